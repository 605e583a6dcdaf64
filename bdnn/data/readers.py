"""Readers for the raw benchmark file formats, with strict validation.

Formats:

- IDX (MNIST): big-endian int32 magic number, then one big-endian int32 per
  dimension, then the unsigned-byte payload in C order. Magic 2051 marks
  3-D image files, 2049 1-D label files. The file may be gzip-compressed
  (detected from its first bytes, not its name).
- CIFAR-10 python batches: Python 2 pickles of a dict with ``b"data"``
  (N x 3072 uint8: the 1024 red values, then green, then blue, each a
  row-major 32 x 32 plane) and ``b"labels"``.
- TEXMEX fvecs, ivecs and bvecs: each row is a little-endian int32 dimension
  d followed by d values (float32, int32 or uint8).

Every reader raises ``ValueError`` naming the file and what was expected when
the content does not match its format, so a truncated download fails loudly.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
CIFAR_IMAGE_SHAPE = (32, 32, 3)
_CIFAR_ROW_LENGTH = 32 * 32 * 3
_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UNSIGNED_BYTE = 0x08

# The only globals a CIFAR-10 batch pickle refers to: numpy's array
# reconstruction (under its NumPy 1 and NumPy 2 module names) and the codec
# that Python 3 uses for bytes in protocol-2 pickles. Anything else is
# rejected, because unpickling arbitrary globals can run arbitrary code.
_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file, gzip-compressed or plain.

    Parameters
    ----------
    path : path-like
        The IDX file.
    expected_magic : int
        Magic number the header must contain (2051 for MNIST images, 2049 for
        labels). Its low byte is the number of dimensions.

    Returns
    -------
    numpy.ndarray
        Array of dtype uint8 with the shape given by the header.

    Raises
    ------
    ValueError
        If the file is not valid gzip, the magic number differs, the header is
        short or the payload size does not match the header's dimensions.
    """
    path = Path(path)
    content = _read_maybe_gzip(path)
    if len(content) < 4:
        raise ValueError(f"{path}: file is {len(content)} bytes long, too short for an IDX header; download it again")

    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        raise ValueError(
            f"{path}: expected IDX magic number {expected_magic}, found {magic}; "
            "the file is not the expected MNIST file or is corrupted"
        )
    if content[2] != _IDX_UNSIGNED_BYTE:
        raise ValueError(f"{path}: IDX type code {content[2]:#04x} is not supported, expected 0x08 (unsigned byte)")

    n_dims = content[3]
    header_length = 4 + 4 * n_dims
    if len(content) < header_length:
        raise ValueError(f"{path}: IDX header needs {header_length} bytes but the file has {len(content)}; it is truncated")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))

    expected_length = header_length + int(np.prod(shape, dtype=np.int64))
    if len(content) != expected_length:
        problem = "truncated" if len(content) < expected_length else "longer than its header states"
        raise ValueError(
            f"{path}: IDX header gives shape {shape}, so the content must be {expected_length} bytes, "
            f"but it is {len(content)} bytes ({problem}); download the file again"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_length).reshape(shape)


def read_mnist_images(path: str | os.PathLike) -> np.ndarray:
    """Read an MNIST image file (IDX magic 2051).

    Parameters
    ----------
    path : path-like
        ``*-images-idx3-ubyte`` file, gzip-compressed or plain.

    Returns
    -------
    numpy.ndarray
        Images of shape (n, rows, cols) and dtype uint8 (28 x 28 for MNIST).

    Raises
    ------
    ValueError
        If the file is not a valid IDX image file.
    """
    return read_idx(path, IDX_IMAGES_MAGIC)


def read_mnist_labels(path: str | os.PathLike, n_classes: int = 10) -> np.ndarray:
    """Read an MNIST label file (IDX magic 2049) and check the label range.

    Parameters
    ----------
    path : path-like
        ``*-labels-idx1-ubyte`` file, gzip-compressed or plain.
    n_classes : int
        Labels must lie in ``0 .. n_classes - 1``.

    Returns
    -------
    numpy.ndarray
        Labels of shape (n,) and dtype uint8.

    Raises
    ------
    ValueError
        If the file is not a valid IDX label file or a label is out of range.
    """
    labels = read_idx(path, IDX_LABELS_MAGIC)
    _check_label_range(labels, n_classes, Path(path))
    return labels


def read_cifar_batch(path: str | os.PathLike, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch.

    Parameters
    ----------
    path : path-like
        A ``data_batch_*`` or ``test_batch*`` pickle.
    n_classes : int
        Labels must lie in ``0 .. n_classes - 1``.

    Returns
    -------
    images : numpy.ndarray
        Shape (n, 32, 32, 3), dtype uint8, channels last in RGB order.
    labels : numpy.ndarray
        Shape (n,), dtype uint8.

    Raises
    ------
    ValueError
        If the file is not a readable batch pickle, ``b"data"`` is not an
        n x 3072 uint8 array, or the labels do not match it in number or range.
    """
    path = Path(path)
    batch = _load_cifar_pickle(path)
    for key in (b"data", b"labels"):
        if key not in batch:
            raise ValueError(f"{path}: CIFAR-10 batch has no {key!r} entry; keys found: {sorted(batch)}")

    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_ROW_LENGTH:
        description = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (n, {_CIFAR_ROW_LENGTH}), got {description}")

    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: b'labels' must be a list of integers ({error})") from error
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: expected {data.shape[0]} labels (one per row of b'data'), got shape {labels.shape}")
    _check_label_range(labels, n_classes, path)

    # Each row stores the red plane, then green, then blue; move the channel axis last.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def read_cifar_meta(path: str | os.PathLike) -> list[str]:
    """Read the class names from a CIFAR-10 ``batches.meta`` pickle.

    Parameters
    ----------
    path : path-like
        The ``batches.meta`` file.

    Returns
    -------
    list of str
        Class names in label order.

    Raises
    ------
    ValueError
        If the file is not a readable pickle with a ``b"label_names"`` list.
    """
    path = Path(path)
    meta = _load_cifar_pickle(path)
    names = meta.get(b"label_names")
    if not isinstance(names, list) or not all(isinstance(name, bytes) for name in names):
        raise ValueError(f"{path}: expected b'label_names' to be a list of byte strings, got {type(names).__name__}")
    return [name.decode("ascii") for name in names]


def read_fvecs(path: str | os.PathLike, count: int | None = None, mmap: bool = False) -> np.ndarray:
    """Read a TEXMEX ``.fvecs`` file of float32 vectors.

    Parameters
    ----------
    path : path-like
        The fvecs file.
    count : int, optional
        Read only the first ``count`` rows. Only those rows' dimensions are checked.
    mmap : bool
        Map the file into memory instead of reading it, for large files such
        as the 1,000,000-row SIFT base set. The result is then a read-only
        strided view of the file.

    Returns
    -------
    numpy.ndarray
        Shape (n, d), dtype float32.

    Raises
    ------
    ValueError
        If the file is empty, its size is not a whole number of rows, a row
        has a different dimension than the first, or ``count`` exceeds the
        number of rows.
    """
    return _read_vecs(Path(path), np.dtype("<f4"), count, mmap)


def read_ivecs(path: str | os.PathLike, count: int | None = None, mmap: bool = False) -> np.ndarray:
    """Read a TEXMEX ``.ivecs`` file of int32 vectors (for example ground-truth ids).

    Parameters and errors are those of :func:`read_fvecs`.

    Returns
    -------
    numpy.ndarray
        Shape (n, d), dtype int32.
    """
    return _read_vecs(Path(path), np.dtype("<i4"), count, mmap)


def read_bvecs(path: str | os.PathLike, count: int | None = None, mmap: bool = False) -> np.ndarray:
    """Read a TEXMEX ``.bvecs`` file of uint8 vectors.

    Parameters and errors are those of :func:`read_fvecs`.

    Returns
    -------
    numpy.ndarray
        Shape (n, d), dtype uint8.
    """
    return _read_vecs(Path(path), np.dtype("u1"), count, mmap)


def _read_maybe_gzip(path: Path) -> bytes:
    with open(path, "rb") as stream:
        content = stream.read()
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: gzip data is truncated or corrupted ({error}); download the file again") from error


def _check_label_range(labels: np.ndarray, n_classes: int, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{path}: labels must lie in 0..{n_classes - 1}, found values from {labels.min()} to {labels.max()}"
        )


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict:
    with open(path, "rb") as stream:
        content = stream.read()
    try:
        loaded = _CifarUnpickler(io.BytesIO(content), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(
            f"{path}: not a readable CIFAR-10 python pickle ({type(error).__name__}: {error}); "
            "the file may be truncated or corrupted"
        ) from error
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(loaded).__name__}")
    return loaded


def _read_vecs(path: Path, value_dtype: np.dtype, count: int | None, mmap: bool) -> np.ndarray:
    size = path.stat().st_size
    if size < 4:
        raise ValueError(f"{path}: file is {size} bytes long, too short for one vector; it is empty or truncated")
    with open(path, "rb") as stream:
        dim = int.from_bytes(stream.read(4), "little", signed=True)
    if dim <= 0:
        raise ValueError(f"{path}: first row has dimension {dim}, expected a positive number; the file is corrupted")

    row_bytes = 4 + dim * value_dtype.itemsize
    if size % row_bytes:
        raise ValueError(
            f"{path}: file size {size} is not a multiple of the row size {row_bytes} bytes "
            f"(int32 dimension {dim} + {dim} values of {value_dtype.itemsize} bytes); "
            "it is truncated or its rows have different dimensions"
        )
    n_rows = size // row_bytes
    if count is not None:
        if not 0 <= count <= n_rows:
            raise ValueError(f"{path}: requested {count} rows but the file has {n_rows}")
        n_rows = count

    if mmap:
        raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(n_rows, row_bytes))
    else:
        raw = np.fromfile(path, dtype=np.uint8, count=n_rows * row_bytes).reshape(n_rows, row_bytes)

    dims = raw[:, :4].view("<i4")[:, 0]
    mismatched = np.flatnonzero(dims != dim)
    if mismatched.size:
        row = int(mismatched[0])
        raise ValueError(
            f"{path}: row {row} has dimension {int(dims[row])} but row 0 has {dim}; "
            f"{mismatched.size} rows differ, so the file is corrupted"
        )

    values = raw[:, 4:].view(value_dtype)
    if mmap:
        return values
    return np.ascontiguousarray(values.astype(value_dtype.newbyteorder("="), copy=False))
