"""Local copies accepted without a matching checksum (``allow_unverified``).

Such a copy is only used after its content passed the format readers (shapes,
row counts, label range) and with a warning per file. The manifest marks each
file ``unverified``.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from bdnn.data.download import VerificationError
from bdnn.data.pins import PinStore
from bdnn.data.registry import DatasetSpec
from bdnn.data.verify import UNVERIFIED, Evidence, check_content, verify_file

logger = logging.getLogger(__name__)


def find_pattern_copy(spec: DatasetSpec, directory: Path, pins: PinStore | None) -> dict[str, tuple[Path, Evidence]] | None:
    """Select and check the files of an extracted copy that match the registry's ``unverified_copy`` patterns.

    Parameters
    ----------
    spec : DatasetSpec
        Dataset with at least one ``unverified_copy`` pattern.
    directory : pathlib.Path
        The dataset folder of the copy (for example ``{mirror}/cifar10``).
    pins : PinStore or None
        The dataset's pins, used when a matched file has a registry entry.

    Returns
    -------
    dict or None
        File name (the manifest key) to its path and evidence, or None when a
        required pattern matches no file. A file whose path and checksum match
        a registry entry keeps that verification. Every other file is unverified.

    Raises
    ------
    ValueError
        If a matched file fails the content check.
    """
    matches: dict[str, tuple[Path, str]] = {}
    for pattern in spec.unverified_copy:
        found = sorted(
            path
            for path in directory.glob(pattern.pattern)
            if path.is_file() and fnmatchcase(path.relative_to(directory).as_posix(), pattern.pattern)
        )
        if pattern.required and not found:
            logger.info("Copy in %s has no file matching %s, so it is not used", directory, pattern.pattern)
            return None
        for path in found:
            matches.setdefault(path.relative_to(directory).as_posix(), (path, pattern.format))

    registry_files = {file.path: file for file in spec.files.values()}
    selected: dict[str, tuple[Path, Evidence]] = {}
    for relative, (path, file_format) in matches.items():
        file = registry_files.get(relative)
        evidence = None
        if file is not None:
            try:
                evidence = verify_file(file, path, pins)
            except VerificationError:
                evidence = None
        if evidence is None:
            shape = file.shape if file is not None else None
            evidence = check_unverified_file(path, file_format, shape, spec.n_classes)
        selected[PurePosixPath(relative).name] = (path, evidence)
    return selected


def check_unverified_file(path: Path, file_format: str, shape: tuple[int, ...] | None, n_classes: int | None) -> Evidence:
    """Check the content of a file accepted without verification and log a warning.

    The number of items is not compared, because partial copies are allowed.
    Raises ``ValueError`` naming the file when the content is invalid.
    """
    found = check_content(path, file_format, shape, exact_count=False, n_classes=n_classes)
    logger.warning(
        "Using UNVERIFIED copy %s (allow_unverified is set): its checksum matches no published or pinned value; "
        "content checked, shape %s",
        path,
        found,
    )
    return Evidence(UNVERIFIED)
