"""Checksums of files and of the decompressed content of gzip files."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

_CHUNK_BYTES = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Return the hexadecimal digest of a file's bytes.

    Parameters
    ----------
    path : path-like
        File to hash, read in chunks.
    algorithm : str
        A ``hashlib`` algorithm name such as ``"md5"`` or ``"sha256"``.

    Returns
    -------
    str
        Lowercase hexadecimal digest.
    """
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, algorithm).hexdigest()


def gzip_content_digest(path: str | os.PathLike, algorithm: str) -> tuple[int, str] | None:
    """Return the size and digest of a gzip file's decompressed content.

    Parameters
    ----------
    path : path-like
        A gzip-compressed file.
    algorithm : str
        A ``hashlib`` algorithm name.

    Returns
    -------
    tuple of (int, str) or None
        Decompressed size in bytes and lowercase hexadecimal digest, or None
        when the file is not valid gzip data (not gzip, truncated or corrupted).
    """
    digest = hashlib.new(algorithm)
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return size, digest.hexdigest()
