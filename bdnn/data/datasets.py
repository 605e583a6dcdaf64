"""Canonical on-disk form of each dataset, built from the acquisition manifest.

``prepare_dataset`` writes four files in its output folder:

- ``items.npy``: every item of the dataset, parts concatenated in a fixed order:
    - ``mnist``: the 60,000 training images, then the 10,000 test images,
      uint8 of shape (N, 28, 28);
    - ``cifar10``: the training batches in batch-number order, then the test
      batch, uint8 of shape (N, 32, 32, 3) with channels last in RGB order;
    - ``sift1m``: the learn, base and query vectors, float32 of shape (N, 128);
    - ``digits``: the 1,797 scikit-learn digits, uint8 of shape (N, 8, 8), values 0..16.
- ``labels.npy``: int16 class label per item, -1 where a dataset has none (SIFT1M);
- ``parts.npy``: uint8 part id per item, an index into ``info["parts"]``;
- ``info.json``: part names in id order, counts per part, item shape and
  dtype, class names, which raw files make up each part, and the manifest's
  verification status. It is written last, so its presence marks a complete output.

The SIFT1M ground truth (``sift_groundtruth.ivecs``) is not an item. Its path
is given in ``info["extra_files"]["groundtruth"]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdnn import __version__
from bdnn.data import readers
from bdnn.data.manifest import read_manifest
from bdnn.io import atomic_path, save_json, save_npy

logger = logging.getLogger(__name__)

DATASETS = ("cifar10", "mnist", "sift1m", "digits")
NO_LABEL = -1
INFO_FORMAT_VERSION = 1
_COPY_CHUNK_ROWS = 100_000
_CIFAR_TRAIN_KEY = re.compile(r"^data_batch_(\d+)$")


@dataclass(frozen=True)
class Part:
    """One named part of a dataset (for example ``"train"``), before concatenation.

    ``items`` may be a memory-mapped array. ``labels`` is None for unlabelled
    parts. ``files`` lists the manifest keys the part was read from.
    """

    name: str
    items: np.ndarray
    labels: np.ndarray | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class CanonicalDataset:
    """A dataset in canonical form, as returned by :func:`load_canonical`.

    Attributes
    ----------
    items : numpy.ndarray
        All items, shape (N, ...).
    labels : numpy.ndarray
        Shape (N,), int16, -1 for unlabelled items.
    parts : numpy.ndarray
        Shape (N,), uint8 part ids indexing ``info["parts"]``.
    info : dict
        Content of ``info.json``.
    """

    items: np.ndarray
    labels: np.ndarray
    parts: np.ndarray
    info: dict[str, Any]

    def part_indices(self, name: str) -> np.ndarray:
        """Return the item indices of part ``name``, in item order.

        Raises
        ------
        ValueError
            If the dataset has no such part.
        """
        names = self.info["parts"]
        if name not in names:
            raise ValueError(f"dataset {self.info['dataset']!r} has no part {name!r}; parts are {names}")
        return np.flatnonzero(self.parts == names.index(name))


def prepare_dataset(dataset: str, manifest_path: str | os.PathLike | None, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write the canonical form of a dataset.

    Parameters
    ----------
    dataset : str
        One of ``"cifar10"``, ``"mnist"``, ``"sift1m"`` or ``"digits"``.
    manifest_path : path-like or None
        The ``manifest.json`` written by ``acquire``. Ignored (and may be
        None) for ``"digits"``, which ships with scikit-learn.
    out_dir : path-like
        Output folder for ``items.npy``, ``labels.npy``, ``parts.npy`` and ``info.json``.

    Returns
    -------
    dict
        The content written to ``info.json``.

    Raises
    ------
    ValueError
        If the dataset is unknown, the manifest describes another dataset or
        lacks a file, or a raw file is invalid.
    FileNotFoundError
        If the manifest or a file it lists is missing.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    started = time.monotonic()
    logger.info("Preparing canonical %s in %s", dataset, out_dir)

    extra_files: dict[str, str] = {}
    class_names: list[str] | None
    if dataset == "digits":
        parts, class_names = _digits_parts()
        source: dict[str, Any] = {"package": "scikit-learn", "loader": "sklearn.datasets.load_digits"}
        verified = True
    else:
        if manifest_path is None:
            raise ValueError(f"dataset {dataset!r} needs the manifest written by the acquire step")
        manifest = read_manifest(manifest_path, dataset)
        files = {key: Path(entry["path"]) for key, entry in manifest["files"].items()}
        if dataset == "mnist":
            parts, class_names = _mnist_parts(files)
        elif dataset == "cifar10":
            parts, class_names = _cifar_parts(files)
        else:
            parts, class_names = _sift_parts(files), None
            extra_files["groundtruth"] = str(files["groundtruth"])
        source = {
            "manifest": str(Path(manifest_path).resolve()),
            "files": {
                key: {"path": entry["path"], "verification": entry["verification"]}
                for key, entry in manifest["files"].items()
            },
        }
        verified = bool(manifest.get("verified", False))

    out_dir = Path(out_dir)
    _write_arrays(parts, out_dir)
    info = {
        "format_version": INFO_FORMAT_VERSION,
        "dataset": dataset,
        "parts": [part.name for part in parts],
        "counts": {part.name: int(part.items.shape[0]) for part in parts},
        "n_items": int(sum(part.items.shape[0] for part in parts)),
        "item_shape": list(parts[0].items.shape[1:]),
        "item_dtype": str(parts[0].items.dtype),
        "has_labels": all(part.labels is not None for part in parts),
        "class_names": class_names,
        "part_files": {part.name: list(part.files) for part in parts},
        "verified": verified,
        "source": source,
        "extra_files": extra_files,
        "bdnn_version": __version__,
    }
    save_json(out_dir / "info.json", info)
    logger.info(
        "Prepared %s: %s items (%s) in %.1f s",
        dataset,
        info["n_items"],
        ", ".join(f"{name} {count}" for name, count in info["counts"].items()),
        time.monotonic() - started,
    )
    if not verified:
        logger.warning("Canonical %s is built from unverified raw files; see %s", dataset, manifest_path)
    return info


def load_canonical(out_dir: str | os.PathLike, mmap: bool = False) -> CanonicalDataset:
    """Load a dataset written by :func:`prepare_dataset`.

    Parameters
    ----------
    out_dir : path-like
        Folder with ``items.npy``, ``labels.npy``, ``parts.npy`` and ``info.json``.
    mmap : bool
        Memory-map ``items.npy`` read-only instead of reading it.

    Returns
    -------
    CanonicalDataset
        Arrays and info.

    Raises
    ------
    FileNotFoundError
        If ``info.json`` or an array file is missing.
    ValueError
        If the arrays disagree with each other or with ``info.json``.
    """
    out_dir = Path(out_dir)
    info_path = out_dir / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found; run prepare_dataset for this folder first")
    info = json.loads(info_path.read_text(encoding="utf-8"))

    items = np.load(out_dir / "items.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    labels = np.load(out_dir / "labels.npy", allow_pickle=False)
    parts = np.load(out_dir / "parts.npy", allow_pickle=False)

    n_items = info["n_items"]
    for name, array, dtype in (("labels", labels, np.int16), ("parts", parts, np.uint8)):
        if array.shape != (n_items,) or array.dtype != dtype:
            raise ValueError(
                f"{out_dir}/{name}.npy must have shape ({n_items},) and dtype {np.dtype(dtype)}, "
                f"got {array.shape} {array.dtype}; run prepare_dataset again"
            )
    if items.shape != (n_items, *info["item_shape"]) or str(items.dtype) != info["item_dtype"]:
        raise ValueError(
            f"{out_dir}/items.npy has shape {items.shape} and dtype {items.dtype}, but info.json gives "
            f"{(n_items, *info['item_shape'])} {info['item_dtype']}; run prepare_dataset again"
        )
    if parts.size and int(parts.max()) >= len(info["parts"]):
        raise ValueError(f"{out_dir}/parts.npy has part id {int(parts.max())} but info.json names {len(info['parts'])} parts")
    return CanonicalDataset(items=items, labels=labels, parts=parts, info=info)


def _mnist_parts(files: Mapping[str, Path]) -> tuple[list[Part], list[str]]:
    _require_keys(files, ("train_images", "train_labels", "test_images", "test_labels"), "mnist")
    parts = []
    for name in ("train", "test"):
        images = readers.read_mnist_images(files[f"{name}_images"])
        labels = readers.read_mnist_labels(files[f"{name}_labels"])
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"MNIST {name} part: {files[f'{name}_images']} has {images.shape[0]} images but "
                f"{files[f'{name}_labels']} has {labels.shape[0]} labels"
            )
        parts.append(Part(name, images, labels, (f"{name}_images", f"{name}_labels")))
    return parts, [str(digit) for digit in range(10)]


def _cifar_parts(files: Mapping[str, Path]) -> tuple[list[Part], list[str] | None]:
    train_keys = sorted(
        (key for key in files if _CIFAR_TRAIN_KEY.match(key)), key=lambda key: int(_CIFAR_TRAIN_KEY.match(key).group(1))
    )
    test_keys = sorted(key for key in files if key.startswith("test_batch"))
    if not train_keys or not test_keys:
        raise ValueError(
            f"CIFAR-10 manifest needs at least one data_batch_* and one test_batch* file, got {sorted(files)}"
        )

    parts = []
    for name, keys in (("train", train_keys), ("test", test_keys)):
        batches = [readers.read_cifar_batch(files[key]) for key in keys]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        parts.append(Part(name, images, labels, tuple(keys)))
    class_names = readers.read_cifar_meta(files["batches.meta"]) if "batches.meta" in files else None
    return parts, class_names


def _sift_parts(files: Mapping[str, Path]) -> list[Part]:
    _require_keys(files, ("learn", "base", "query", "groundtruth"), "sift1m")
    parts = [Part(name, readers.read_fvecs(files[name], mmap=True), None, (name,)) for name in ("learn", "base", "query")]
    dims = {part.name: part.items.shape[1] for part in parts}
    if len(set(dims.values())) != 1:
        raise ValueError(f"SIFT1M parts have different dimensions {dims}; the raw files do not belong together")

    n_queries = parts[2].items.shape[0]
    groundtruth_rows = readers.read_ivecs(files["groundtruth"], mmap=True).shape[0]
    if groundtruth_rows != n_queries:
        raise ValueError(
            f"{files['groundtruth']} has {groundtruth_rows} rows, expected one per query ({n_queries})"
        )
    return parts


def _digits_parts() -> tuple[list[Part], list[str]]:
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes about a second to import

    digits = load_digits()
    images = np.asarray(digits.images)
    if images.min() < 0 or images.max() > 16 or not np.array_equal(images, np.round(images)):
        raise ValueError("sklearn.datasets.load_digits returned values outside the integers 0..16")
    part = Part("all", images.astype(np.uint8), np.asarray(digits.target), ("sklearn.datasets.load_digits",))
    return [part], [str(name) for name in digits.target_names]


def _require_keys(files: Mapping[str, Path], keys: tuple[str, ...], dataset: str) -> None:
    missing = [key for key in keys if key not in files]
    if missing:
        raise ValueError(f"{dataset} manifest lacks files {missing}; run the acquire step again")


def _write_arrays(parts: list[Part], out_dir: Path) -> None:
    """Write items.npy (streamed in chunks), labels.npy and parts.npy for the concatenated parts."""
    item_shape = parts[0].items.shape[1:]
    dtype = parts[0].items.dtype.newbyteorder("=")
    for part in parts:
        if part.items.shape[1:] != item_shape or part.items.dtype.newbyteorder("=") != dtype:
            raise ValueError(
                f"part {part.name!r} has items of shape {part.items.shape[1:]} and dtype {part.items.dtype}, "
                f"but part {parts[0].name!r} has {item_shape} and {parts[0].items.dtype}"
            )
    if len(parts) > np.iinfo(np.uint8).max:
        raise ValueError(f"{len(parts)} parts do not fit uint8 part ids")
    n_items = sum(part.items.shape[0] for part in parts)

    with atomic_path(out_dir / "items.npy") as temporary:
        items = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=(n_items, *item_shape))
        offset = 0
        for part in parts:
            count = part.items.shape[0]
            for start in range(0, count, _COPY_CHUNK_ROWS):
                stop = min(start + _COPY_CHUNK_ROWS, count)
                items[offset + start : offset + stop] = part.items[start:stop]
            offset += count
        items.flush()
        del items

    labels = np.full(n_items, NO_LABEL, dtype=np.int16)
    part_ids = np.empty(n_items, dtype=np.uint8)
    offset = 0
    for part_id, part in enumerate(parts):
        count = part.items.shape[0]
        if part.labels is not None:
            labels[offset : offset + count] = part.labels
        part_ids[offset : offset + count] = part_id
        offset += count
    save_npy(out_dir / "labels.npy", labels)
    save_npy(out_dir / "parts.npy", part_ids)
