"""Atomic file output and array validation shared by every pipeline stage.

Every writer here writes to a temporary file in the destination folder and
renames it into place, so an interrupted job never leaves a half-written
output behind that a later run could mistake for a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and rename it to ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its parent folder is created if missing.
    suffix : str
        Suffix of the temporary file, for writers that append one (``np.save``
        appends ``.npy`` unless the name already ends with it).

    Yields
    ------
    pathlib.Path
        The temporary path to write to. It is removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    # mkstemp creates the file readable by its owner only; give it the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array to ``path`` in ``.npy`` format, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, np.asarray(array), allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """Write named arrays to ``path`` as an uncompressed ``.npz`` archive, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez(stream, **{name: np.asarray(value) for name, value in arrays.items()})


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` archive without allowing pickled objects."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_json(path: str | os.PathLike, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path``, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def require_finite(array: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` if ``array`` contains NaN or infinity."""
    if not np.all(np.isfinite(array)):
        count = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{what} contains {count} NaN or infinite values; check the input data and the previous step")


def require_feature_matrix(array: np.ndarray, what: str, *, finite: bool = True) -> np.ndarray:
    """Check that ``array`` is a 2-D matrix of integer or floating-point features and return it.

    Raises
    ------
    ValueError
        If the array is not 2-D, has another dtype, or (with ``finite``) contains NaN or infinity.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array of shape (n_samples, n_features), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{what} must have an integer or floating-point dtype, got {array.dtype}")
    if finite:
        require_finite(array, what)
    return array


def require_codes(codes: np.ndarray, what: str) -> np.ndarray:
    """Check that ``codes`` is a 2-D ``uint8`` array of 0/1 bits and return it.

    Raises
    ------
    ValueError
        If the array is not 2-D, not ``uint8`` or contains values other than 0 and 1.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array of shape (n, n_bits), got shape {codes.shape}")
    if codes.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8 (bits 0/1), got {codes.dtype}")
    if codes.size and codes.max() > 1:
        raise ValueError(f"{what} must contain only 0 and 1, found {int(codes.max())}")
    return codes
