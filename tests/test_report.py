"""Summary table and figures."""

import pandas as pd
import pytest

from bdnn.io import save_json
from bdnn.report.figures import plot_map_vs_bits
from bdnn.report.summary import NO_REFERENCE, build_summary, write_summary
from bdnn.report.tables import experiment_table, main


def fake_metrics(value: float) -> dict:
    return {"map": {"trapezoid": value, "standard": value + 0.01}, "precision_at_k": {"10": 0.5, "100": 0.25},
            "radius": 2, "precision_within_radius": 0.125}


EXPERIMENTS = {
    "cifar10-dh": {"dataset": "cifar10", "feature": "gist512", "protocol": "deep-hashing",
                   "ground_truth": {"type": "labels"}},
    "mnist": {"dataset": "mnist", "feature": "pixels", "ground_truth": {"type": "knn", "k": 50}},
}


@pytest.fixture
def metrics_paths(tmp_path):
    paths = []
    for experiment, method, bits, value in [("cifar10-dh", "itq", 16, 0.15), ("cifar10-dh", "itq", 32, 0.16),
                                            ("mnist", "itq", 16, 0.2)]:
        path = tmp_path / "results" / experiment / method / str(bits) / "metrics.json"
        save_json(path, fake_metrics(value))
        paths.append(path)
    return paths


def test_summary_rows_in_percent(metrics_paths):
    summary = build_summary(metrics_paths, EXPERIMENTS)
    row = summary[(summary["experiment"] == "mnist") & (summary["metric"] == "mAP") & (summary["ap_form"] == "standard")]
    assert len(row) == 1
    assert row["value"].iloc[0] == pytest.approx(21.0)
    assert row["protocol"].iloc[0] == "knn50"
    assert set(summary["metric"]) == {"mAP", "precision@10", "precision@100", "precision_within_radius_2"}


def test_summary_attaches_published_values(metrics_paths):
    summary = build_summary(metrics_paths, EXPERIMENTS)
    itq = summary[(summary["experiment"] == "cifar10-dh") & (summary["metric"] == "mAP") & (summary["bits"] == 16)]
    assert (itq["reference_value"] == 15.67).all()
    assert itq["reference_source"].str.contains("Liong").all()
    mnist = summary[summary["experiment"] == "mnist"]
    assert mnist["reference_value"].isna().all()
    assert (mnist["reference_source"] == NO_REFERENCE).all()


def test_summary_csv_and_figure(metrics_paths, tmp_path):
    summary = build_summary(metrics_paths, EXPERIMENTS)
    write_summary(summary, tmp_path / "summary.csv")
    reread = pd.read_csv(tmp_path / "summary.csv")
    assert len(reread) == len(summary)
    plot_map_vs_bits(reread, "cifar10-dh", tmp_path / "figure.png")
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_figure_rejects_unknown_experiment(metrics_paths, tmp_path):
    summary = build_summary(metrics_paths, EXPERIMENTS)
    with pytest.raises(ValueError, match="no mAP rows"):
        plot_map_vs_bits(summary, "sift1m", tmp_path / "figure.png")


def test_tables_show_values_and_deltas(metrics_paths):
    summary = build_summary(metrics_paths, EXPERIMENTS)
    text = experiment_table(summary, "cifar10-dh")
    assert "| method | metric | 16 bits | 32 bits |" in text
    assert "15.00 (published 15.67, Δ -0.67)" in text
    assert "Liong" in text
    mnist = experiment_table(summary, "mnist")
    assert "| itq | mAP (trapezoid AP) | 20.00 |" in mnist
    assert "none available for this protocol" in mnist


def test_tables_reject_unknown_experiment(metrics_paths):
    with pytest.raises(ValueError, match="no rows for experiment 'sift1m'"):
        experiment_table(build_summary(metrics_paths, EXPERIMENTS), "sift1m")


def test_tables_command_writes_file(metrics_paths, tmp_path):
    summary_path = tmp_path / "summary.csv"
    write_summary(build_summary(metrics_paths, EXPERIMENTS), summary_path)
    output = tmp_path / "tables.md"
    main([str(summary_path), "--output", str(output)])
    text = output.read_text()
    assert text.startswith("### ")
    assert "### cifar10-dh" in text
    assert "### mnist" in text
