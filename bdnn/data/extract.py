"""Safe extraction of selected members of a tar archive.

Only members named by the caller are extracted, and each is written to a
destination path that the caller computed, never to a path taken from the
archive. Archive entries with absolute paths or ``..`` components therefore
cannot write outside the target folder. Only regular files are extracted:
a requested member that is a link or a device is rejected.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

from bdnn.io import atomic_path

logger = logging.getLogger(__name__)


def list_regular_members(archive: Path) -> dict[str, int]:
    """Return the size in bytes of every regular file in a tar archive, by normalised member name.

    Raises
    ------
    ValueError
        If the file is not a readable tar archive.
    """
    try:
        with tarfile.open(archive, "r|*") as tar:
            return {_normalise(info.name): info.size for info in tar if info.isfile()}
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"{archive}: not a readable tar archive ({error})") from error


def extract_members(archive: Path, members: Mapping[str, Path]) -> None:
    """Extract the requested regular-file members of a tar archive in one pass.

    Parameters
    ----------
    archive : pathlib.Path
        A tar file, optionally gzip, bzip2 or xz compressed.
    members : mapping of str to pathlib.Path
        Member name inside the archive (``/`` separators, compared after
        ``posixpath.normpath``, so a leading ``./`` is ignored) to the path to
        write it to. Each file is written atomically.

    Raises
    ------
    ValueError
        If the archive is unreadable, a requested member is missing, or a
        requested member is not a regular file.
    """
    pending = dict(members)
    started = time.monotonic()
    try:
        with tarfile.open(archive, "r|*") as tar:
            for info in tar:
                name = _normalise(info.name)
                if name not in pending:
                    continue
                if not info.isfile():
                    raise ValueError(f"{archive}: member {info.name!r} is not a regular file, so it is not extracted")
                _copy_member(tar, info, pending.pop(name))
                if not pending:
                    break
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"{archive}: extraction failed ({error}); the archive may be truncated or corrupted") from error

    if pending:
        raise ValueError(f"{archive}: members not found in the archive: {', '.join(sorted(pending))}")
    logger.info("Extracted %d files from %s in %.1f s", len(members), archive.name, time.monotonic() - started)


def _copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(info)
    if source is None:
        raise ValueError(f"member {info.name!r} has no data to extract")
    with source, atomic_path(target) as temporary, open(temporary, "wb") as output:
        shutil.copyfileobj(source, output, length=1 << 20)


def _normalise(name: str) -> str:
    return posixpath.normpath(name)
