"""The summary table: every metric of every run, beside a published reference value where one exists."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from bdnn.io import atomic_path

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["experiment", "dataset", "feature", "protocol", "method", "bits", "metric", "ap_form", "unit",
                   "value", "reference_value", "reference_source"]
NO_REFERENCE = "none available"
KEY_COLUMNS = ["dataset", "feature", "protocol", "method", "bits", "metric"]


def experiment_protocol(settings: Mapping[str, Any]) -> str:
    """Name an experiment's evaluation protocol: its ``protocol`` setting, else ``knn<K>`` or ``labels``."""
    if settings.get("protocol"):
        return str(settings["protocol"])
    truth = settings["ground_truth"]
    return f"knn{truth['k']}" if truth["type"] == "knn" else "labels"


def load_reference(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the table of published values (``bdnn/report/reference.csv`` by default)."""
    if path is None:
        with resources.files("bdnn.report").joinpath("reference.csv").open() as stream:
            return pd.read_csv(stream)
    return pd.read_csv(path)


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten one ``metrics.json`` into (metric, AP form, value in percent) rows."""
    rows = []
    for ap_form in ("trapezoid", "standard"):
        rows.append({"metric": "mAP", "ap_form": ap_form, "value": 100.0 * metrics["map"][ap_form]})
    for k, value in sorted(metrics["precision_at_k"].items(), key=lambda item: int(item[0])):
        rows.append({"metric": f"precision@{int(k)}", "ap_form": "", "value": 100.0 * value})
    radius = metrics["radius"]
    rows.append({"metric": f"precision_within_radius_{radius}", "ap_form": "", "value": 100.0 * metrics["precision_within_radius"]})
    return rows


def build_summary(metrics_paths: Sequence[str | os.PathLike], experiments: Mapping[str, Mapping[str, Any]],
                  reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Collect metrics files named ``results/<experiment>/<method>/<bits>/metrics.json`` into one table.

    Parameters
    ----------
    metrics_paths : sequence of path-like
        The metrics files; experiment, method and code length come from the path.
    experiments : mapping
        Experiment settings by name, for dataset, feature and protocol.
    reference : DataFrame, optional
        Published values (see :func:`load_reference`); the packaged table by default.

    Returns
    -------
    DataFrame
        One row per metric, columns :data:`SUMMARY_COLUMNS`. Values are percentages.
    """
    reference = load_reference() if reference is None else reference
    rows = []
    for path in metrics_paths:
        path = Path(path)
        bits, method, experiment = int(path.parent.name), path.parent.parent.name, path.parent.parent.parent.name
        settings = experiments[experiment]
        with open(path) as stream:
            metrics = json.load(stream)
        for row in metric_rows(metrics):
            rows.append({"experiment": experiment, "dataset": settings["dataset"], "feature": settings["feature"],
                         "protocol": experiment_protocol(settings), "method": method, "bits": bits, "unit": "percent",
                         **row})
    summary = pd.DataFrame(rows, columns=[c for c in SUMMARY_COLUMNS if c not in ("reference_value", "reference_source")])

    published = reference[KEY_COLUMNS + ["value", "source"]].rename(
        columns={"value": "reference_value", "source": "reference_source"})
    summary = summary.merge(published, on=KEY_COLUMNS, how="left")
    summary["reference_source"] = summary["reference_source"].fillna(NO_REFERENCE)
    return summary[SUMMARY_COLUMNS].sort_values(["experiment", "method", "bits"], kind="stable")


def write_summary(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the summary table as CSV, atomically."""
    with atomic_path(path) as temporary:
        summary.to_csv(temporary, index=False, float_format="%.4f")
    logger.info("wrote %d summary rows to %s", len(summary), path)
