"""Stage functions behind the rules, run on small synthetic files."""

import json
import os
import stat

import numpy as np
import pytest

from bdnn.io import save_json, save_npy, save_npz
from bdnn.pipeline import evaluate_codes, load_features, train_and_encode, write_ground_truth, write_split


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 12))
    labels = np.repeat(np.arange(3), 40).astype(np.int16)
    features = centres[labels] + rng.normal(size=(120, 12))
    parts = np.array([0] * 100 + [1] * 20, dtype=np.uint8)
    save_npy(tmp_path / "features.npy", features.astype(np.float32))
    save_npy(tmp_path / "labels.npy", labels)
    save_npy(tmp_path / "parts.npy", parts)
    save_json(tmp_path / "info.json", {"parts": ["train", "test"]})
    return tmp_path


EXPERIMENT = {"query": {"part": "test"}, "database": {"part": "train"}, "train": "database"}


def test_stages_knn_chain(dataset):
    write_split(dataset / "parts.npy", dataset / "info.json", EXPERIMENT, 3, dataset / "split.npz")
    write_ground_truth(dataset / "features.npy", dataset / "labels.npy", dataset / "split.npz",
                       {"type": "knn", "k": 5}, dataset / "truth.npz")
    train_and_encode(dataset / "features.npy", dataset / "split.npz", "itq", 8, {"n_iter": 10}, 0,
                     dataset / "model.npz", dataset / "codes.npz")
    metrics = evaluate_codes(dataset / "codes.npz", dataset / "truth.npz", [5, 10], 2, dataset / "metrics.json")

    truth = np.load(dataset / "truth.npz")
    assert truth["neighbours"].shape == (20, 5)
    codes = np.load(dataset / "codes.npz")
    assert codes["query"].shape == (20, 8)
    assert codes["database"].shape == (100, 8)
    assert 0.0 < metrics["map"]["trapezoid"] <= 1.0
    assert json.loads((dataset / "metrics.json").read_text())["map"] == metrics["map"]


def test_stages_label_chain(dataset):
    write_split(dataset / "parts.npy", dataset / "info.json", EXPERIMENT, 3, dataset / "split.npz")
    write_ground_truth(dataset / "features.npy", dataset / "labels.npy", dataset / "split.npz",
                       {"type": "labels"}, dataset / "truth.npz")
    train_and_encode(dataset / "features.npy", dataset / "split.npz", "itq", 8, {}, 0,
                     dataset / "model.npz", dataset / "codes.npz")
    metrics = evaluate_codes(dataset / "codes.npz", dataset / "truth.npz", [5], 2, dataset / "metrics.json")
    # Three well separated classes: ITQ codes retrieve mostly the query's own class.
    assert metrics["map"]["standard"] > 0.8


def test_label_ground_truth_rejects_unlabelled(dataset):
    save_npy(dataset / "labels.npy", np.full(120, -1, dtype=np.int16))
    write_split(dataset / "parts.npy", dataset / "info.json", EXPERIMENT, 0, dataset / "split.npz")
    with pytest.raises(ValueError, match="some items have none"):
        write_ground_truth(dataset / "features.npy", dataset / "labels.npy", dataset / "split.npz",
                           {"type": "labels"}, dataset / "truth.npz")
    assert not (dataset / "truth.npz").exists()


def test_knn_ground_truth_rejects_large_k(dataset):
    write_split(dataset / "parts.npy", dataset / "info.json", EXPERIMENT, 0, dataset / "split.npz")
    with pytest.raises(ValueError, match="k=500 exceeds the database size 100"):
        write_ground_truth(dataset / "features.npy", dataset / "labels.npy", dataset / "split.npz",
                           {"type": "knn", "k": 500}, dataset / "truth.npz")


def test_load_features_rejects_stale_indices(dataset):
    with pytest.raises(ValueError, match="indices reach 500"):
        load_features(dataset / "features.npy", np.array([1, 500]), "database")


def test_training_rejects_nan_features(dataset):
    features = np.load(dataset / "features.npy")
    features[4, 2] = np.nan
    save_npy(dataset / "features.npy", features)
    save_npz(dataset / "split.npz", train=np.arange(100), database=np.arange(100), query=np.arange(100, 120), seed=0)
    with pytest.raises(ValueError, match="NaN"):
        train_and_encode(dataset / "features.npy", dataset / "split.npz", "itq", 8, {}, 0,
                         dataset / "model.npz", dataset / "codes.npz")
    assert not (dataset / "codes.npz").exists()
    assert not (dataset / "model.npz").exists()


def test_atomic_writes_follow_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        save_json(tmp_path / "out.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644
