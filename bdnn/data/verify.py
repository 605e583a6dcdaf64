"""Verification of raw data files against the registry and the pin file.

A copy is verified in one of these ways, recorded in the manifest:

- ``archive-checksum``: the published checksum of the downloaded file matched
  (a ``.gz`` file as published, or the archive the file was extracted from).
- ``content-checksum``: the published checksum of the content matched (an
  extracted archive member, or the decompressed bytes of a ``.gz`` file).
- ``pinned-sha256``: the SHA-256 matched the value pinned from the first copy.
- ``pinned-on-first-use``: no checksum is published and none was pinned yet.
  The structure was checked (size, shape) and the SHA-256 is pinned now.
- ``unverified``: accepted on request although no checksum matched. The
  content was checked (shapes, counts, label range).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bdnn.data import readers
from bdnn.data.checksums import file_digest, gzip_content_digest
from bdnn.data.download import VerificationError
from bdnn.data.pins import PinStore
from bdnn.data.registry import ArchiveSpec, FileSpec

logger = logging.getLogger(__name__)

ARCHIVE_CHECKSUM = "archive-checksum"
CONTENT_CHECKSUM = "content-checksum"
PINNED_SHA256 = "pinned-sha256"
PINNED_ON_FIRST_USE = "pinned-on-first-use"
UNVERIFIED = "unverified"
VERIFICATIONS = (ARCHIVE_CHECKSUM, CONTENT_CHECKSUM, PINNED_SHA256, PINNED_ON_FIRST_USE, UNVERIFIED)

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Evidence:
    """Verification method of a copy and the digests that matched, by algorithm name."""

    verification: str
    checksum: dict[str, str] = field(default_factory=dict)


def verify_file(spec: FileSpec, path: Path, pins: PinStore | None) -> Evidence | None:
    """Verify a copy of a logical file by its checksums or its pin.

    Parameters
    ----------
    spec : FileSpec
        Registry entry of the file.
    path : pathlib.Path
        The copy. A ``.gz`` file may be compressed or already decompressed
        (detected from its first bytes).
    pins : PinStore or None
        The dataset's pins, for datasets without published checksums.

    Returns
    -------
    Evidence or None
        How the copy was verified, or None when the dataset pins checksums and
        this file has no pin yet, so the caller must check it by structure.

    Raises
    ------
    VerificationError
        If no published checksum or pin matches. The message gives each digest found.
    """
    reasons = []
    md5 = None
    if spec.md5 is not None:
        md5 = file_digest(path, "md5")
        if md5 == spec.md5:
            verification = ARCHIVE_CHECKSUM if spec.archive is None else CONTENT_CHECKSUM
            return Evidence(verification, {"md5": md5})
        reasons.append(f"MD5 {md5} differs from the published {spec.md5}")

    if spec.gzip_content is not None:
        expected = spec.gzip_content.md5
        if _is_gzip(path):
            content = gzip_content_digest(path, "md5")
            if content is None:
                reasons.append("it is not valid gzip data")
            elif content[1] == expected:
                return Evidence(CONTENT_CHECKSUM, {"decompressed_md5": content[1]})
            else:
                reasons.append(f"MD5 of the decompressed content {content[1]} differs from the published {expected}")
        else:
            md5 = md5 or file_digest(path, "md5")
            if md5 == expected:
                return Evidence(CONTENT_CHECKSUM, {"md5": md5})
            reasons.append(f"MD5 {md5} of this uncompressed copy differs from the published content MD5 {expected}")

    if pins is not None:
        pinned = pins.get(spec.path)
        if pinned is None and not reasons:
            return None
        if pinned is not None:
            sha256 = file_digest(path, "sha256")
            if sha256 == pinned:
                return Evidence(PINNED_SHA256, {"sha256": sha256})
            reasons.append(f"SHA-256 {sha256} differs from the value {pinned} pinned in {pins.path}")

    raise VerificationError("; ".join(reasons))


def verify_archive(spec: ArchiveSpec, path: Path, pins: PinStore | None) -> Evidence | None:
    """Verify an archive by its size, published MD5 or pin.

    Returns None when the dataset pins checksums and the archive has no pin
    yet. Raises :class:`VerificationError` when a check fails.
    """
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise VerificationError(f"size is {size} bytes, expected {spec.size}")
    if spec.md5 is not None:
        md5 = file_digest(path, "md5")
        if md5 != spec.md5:
            raise VerificationError(f"MD5 {md5} differs from the published {spec.md5}")
        return Evidence(ARCHIVE_CHECKSUM, {"md5": md5})
    if pins is not None and pins.get(spec.name) is not None:
        sha256 = file_digest(path, "sha256")
        if sha256 != pins.get(spec.name):
            raise VerificationError(f"SHA-256 {sha256} differs from the value pinned in {pins.path}")
        return Evidence(PINNED_SHA256, {"sha256": sha256})
    if pins is not None:
        return None
    raise VerificationError("the registry gives no checksum for it and the dataset does not pin checksums")


def check_structure(spec: FileSpec, path: Path, n_classes: int | None) -> tuple[int, ...]:
    """Check a file's size and exact shape against the registry, for copies without a checksum.

    Returns the shape found. Raises ``ValueError`` naming the file when a check fails.
    """
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ValueError(f"{path}: size is {size} bytes, expected {spec.size}")
    return check_content(path, spec.format, spec.shape, exact_count=True, n_classes=n_classes)


def check_content(
    path: Path,
    file_format: str,
    shape: tuple[int, ...] | None,
    *,
    exact_count: bool,
    n_classes: int | None,
) -> tuple[int, ...]:
    """Read a file with the reader of its format and check the array shape.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    file_format : str
        A registry format, such as ``"idx-images"`` or ``"fvecs"``.
    shape : tuple of int or None
        Expected shape of the array the reader returns. None skips the check.
    exact_count : bool
        Compare the first dimension (the number of items) too. When False,
        only the other dimensions are compared, for partial copies.
    n_classes : int or None
        Labels must lie in ``0 .. n_classes - 1``. None uses the reader's default of 10.

    Returns
    -------
    tuple of int
        The shape found (for ``cifar-meta``, the number of class names).

    Raises
    ------
    ValueError
        If the reader rejects the file or the shape differs.
    """
    label_kwargs = {} if n_classes is None else {"n_classes": n_classes}
    if file_format == "idx-images":
        found = readers.read_mnist_images(path).shape
    elif file_format == "idx-labels":
        found = readers.read_mnist_labels(path, **label_kwargs).shape
    elif file_format == "cifar-batch":
        found = readers.read_cifar_batch(path, **label_kwargs)[0].shape
    elif file_format == "cifar-meta":
        found = (len(readers.read_cifar_meta(path)),)
        shape = shape or ((n_classes,) if n_classes is not None else None)
    else:
        vector_readers = {"fvecs": readers.read_fvecs, "ivecs": readers.read_ivecs, "bvecs": readers.read_bvecs}
        found = vector_readers[file_format](path, mmap=True).shape

    if shape is not None:
        compared, expected = (found, shape) if exact_count else (found[1:], shape[1:])
        if tuple(compared) != tuple(expected):
            what = "shape" if exact_count else "shape after the first dimension"
            raise ValueError(f"{path}: expected {what} {tuple(expected)}, found {tuple(compared)} (full shape {found})")
    return tuple(found)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(2) == _GZIP_MAGIC
