"""Stage functions behind the Snakemake rules: files in, files out.

Each function reads its inputs, validates them, calls the package's
algorithms and writes its outputs atomically. The rule scripts in
``workflow/scripts`` only unpack Snakemake's paths and call these.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bdnn.evaluation.splits import make_split
from bdnn.hashing.methods import build_method, fit_method
from bdnn.io import load_npz, require_codes, require_finite, save_json, save_npz

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def _read_info(path: PathLike) -> dict[str, Any]:
    with open(path) as stream:
        return json.load(stream)


def write_split(parts_path: PathLike, info_path: PathLike, experiment: Mapping[str, Any], seed: int,
                output: PathLike) -> dict[str, np.ndarray]:
    """Build an experiment's training, database and query indices and save them with the seed."""
    parts = np.load(parts_path)
    info = _read_info(info_path)
    split = make_split(parts, info["parts"], experiment, seed)
    save_npz(output, **split)
    logger.info("split with seed %d: %d training, %d database, %d query items", seed,
                split["train"].size, split["database"].size, split["query"].size)
    return split


def load_features(path: PathLike, indices: np.ndarray, what: str) -> np.ndarray:
    """Read the feature rows ``indices`` of a feature matrix as float64 and check them.

    Raises
    ------
    ValueError
        If the file is not a 2-D matrix, an index is out of range, or a value is not finite.
    """
    features = np.load(path, mmap_mode="r")
    if features.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D feature matrix, got shape {features.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= features.shape[0]):
        raise ValueError(f"{path}: {what} indices reach {int(indices.max())}, but the file has {features.shape[0]} rows; "
                         "delete the stale split and rerun")
    selected = np.asarray(features[indices], dtype=np.float64)
    require_finite(selected, f"{what} features from {path}")
    return selected


def write_ground_truth(features_path: PathLike, labels_path: PathLike, split_path: PathLike,
                       settings: Mapping[str, Any], output: PathLike) -> None:
    """Compute and save an experiment's ground truth.

    ``settings["type"]`` is ``"knn"`` (the ``settings["k"]`` Euclidean nearest
    database items of each query, as database positions, key ``neighbours``)
    or ``"labels"`` (keys ``query_labels`` and ``database_labels``).
    """
    from bdnn.evaluation.ground_truth import knn_ground_truth

    split = load_npz(split_path)
    if settings["type"] == "knn":
        k = int(settings["k"])
        queries = load_features(features_path, split["query"], "query")
        database = load_features(features_path, split["database"], "database")
        if k > database.shape[0]:
            raise ValueError(f"ground truth k={k} exceeds the database size {database.shape[0]}; lower k")
        started = time.perf_counter()
        neighbours = knn_ground_truth(queries, database, k)
        logger.info("K-NN ground truth (k=%d) for %d queries in %d database items: %.1f s", k, queries.shape[0],
                    database.shape[0], time.perf_counter() - started)
        save_npz(output, type="knn", k=k, neighbours=neighbours)
        return

    labels = np.load(labels_path)
    query_labels, database_labels = labels[split["query"]], labels[split["database"]]
    if np.any(query_labels < 0) or np.any(database_labels < 0):
        raise ValueError(f"{labels_path}: label ground truth needs class labels, but some items have none (-1)")
    save_npz(output, type="labels", query_labels=query_labels, database_labels=database_labels)
    logger.info("label ground truth for %d queries and %d database items", query_labels.size, database_labels.size)


def train_and_encode(features_path: PathLike, split_path: PathLike, method: str, n_bits: int,
                     params: Mapping[str, Any], seed: int, model_path: PathLike, codes_path: PathLike) -> None:
    """Train one hashing method at one code length, then encode queries and database."""
    split = load_npz(split_path)
    train = load_features(features_path, split["train"], "training")
    query = load_features(features_path, split["query"], "query")

    logger.info("training %s at %d bits on %d items of dimension %d", method, n_bits, *train.shape)
    started = time.perf_counter()
    model = build_method(method, n_bits, params, random_state=seed)
    fit_method(model, train, query)
    train_seconds = time.perf_counter() - started
    logger.info("trained %s at %d bits in %.1f s", method, n_bits, train_seconds)
    del train

    query_codes = require_codes(model.encode(query), "query codes")
    database = load_features(features_path, split["database"], "database")
    database_codes = require_codes(model.encode(database), "database codes")
    model.save(model_path)
    save_npz(codes_path, query=query_codes, database=database_codes, train_seconds=train_seconds)


def evaluate_codes(codes_path: PathLike, ground_truth_path: PathLike, ks: Sequence[int], radius: int,
                   output: PathLike) -> dict[str, Any]:
    """Evaluate query codes against database codes with the experiment's ground truth and save the metrics."""
    from bdnn.evaluation.metrics import evaluate

    codes = load_npz(codes_path)
    truth = load_npz(ground_truth_path)
    query_codes = require_codes(codes["query"], f"query codes in {codes_path}")
    database_codes = require_codes(codes["database"], f"database codes in {codes_path}")
    if str(truth["type"]) == "knn":
        relevance: dict[str, Any] = {"relevant": truth["neighbours"]}
    else:
        relevance = {"query_labels": truth["query_labels"], "database_labels": truth["database_labels"]}

    started = time.perf_counter()
    metrics = evaluate(query_codes, database_codes, ks=tuple(ks), radius=radius, **relevance)
    metrics["train_seconds"] = float(codes["train_seconds"])
    logger.info("evaluated %d queries against %d database codes in %.1f s", query_codes.shape[0],
                database_codes.shape[0], time.perf_counter() - started)
    save_json(output, metrics)
    return metrics
