"""Make a dataset's raw files available and record how each was verified.

Sources are tried in this order, file by file, until every logical file of
the dataset has a verified copy:

1. files already in the dataset's raw folder;
2. the mirror, when one is set. A local folder mirror is read in place (only
   archives are extracted into the raw folder). A URL mirror is downloaded
   from. Both use the layout ``{mirror}/{dataset}/{path}``, with the same
   paths as the raw folder (``mnist/train-images-idx3-ubyte.gz``,
   ``cifar10/cifar-10-batches-py/data_batch_1``, ``cifar10/cifar-10-python.tar.gz``);
3. with ``allow_unverified=True``, a local copy in the raw folder or the
   mirror folder whose checksums do not match, after a content check. This
   step comes before the network on purpose, because the caller asked to use
   the local copy;
4. the registry's primary URL, then its mirrors.

When a file is still missing, :class:`DataUnavailableError` is raised at
once. Its message lists the missing files, every source tried and why it
failed, and the two ways to provide the files.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bdnn.data.checksums import file_digest
from bdnn.data.download import DEFAULT_TIMEOUT_S, SUPPORTED_SCHEMES, DownloadError, VerificationError, download_file
from bdnn.data.extract import extract_members, list_regular_members
from bdnn.data.manifest import MANIFEST_NAME, AcquiredFile, build_manifest
from bdnn.data.pins import PIN_FILE_NAME, PinStore
from bdnn.data.registry import ArchiveSpec, DatasetSpec, FileSpec, Registry, load_registry
from bdnn.data.unverified import check_unverified_file, find_pattern_copy
from bdnn.data.verify import PINNED_ON_FIRST_USE, Evidence, check_structure, verify_archive, verify_file
from bdnn.io import save_json

logger = logging.getLogger(__name__)


class DataUnavailableError(RuntimeError):
    """Raised when some raw files of a dataset could not be found, downloaded or verified."""


def acquire(
    dataset: str,
    raw_dir: str | os.PathLike,
    *,
    mirror: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    registry: Registry | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Make the raw files of a dataset available and write their manifest.

    Parameters
    ----------
    dataset : str
        Dataset name in the registry (``"cifar10"``, ``"mnist"``, ``"sift1m"``).
    raw_dir : path-like
        The dataset's raw folder. Downloads and extracted files go here, and
        ``manifest.json`` (and, for SIFT1M, ``checksums.pinned.json``) is written here.
    mirror : path-like or str, optional
        A local folder, or an ``http``, ``https``, ``ftp`` or ``file`` base
        URL, that contains ``{dataset}/{path}`` for the dataset's files or archives.
    allow_unverified : bool
        Accept a local copy (raw folder or mirror folder) whose checksums do
        not match, after checking its content (shapes, counts, label range).
        A warning is logged and the manifest marks those files ``unverified``.
        For datasets whose registry entry has ``unverified_copy`` patterns
        (CIFAR-10), every matching file is used, so a partial copy is accepted.
        NOTE: only folders are searched for such copies, because a URL mirror
        cannot be listed.
    timeout : float
        Seconds allowed for each network connection and blocking read.
    registry : Registry, optional
        The registry to use instead of the one shipped with bdnn.
    progress : bool
        Show progress bars for downloads.

    Returns
    -------
    dict
        The manifest: ``dataset``, ``raw_dir``, ``verified`` (False when any
        file is unverified) and ``files``, which maps each logical file key to
        its absolute ``path``, ``verification``, ``checksum``, ``source``,
        ``origin`` and ``archive``.

    Raises
    ------
    ValueError
        If the dataset is unknown or the mirror setting is invalid.
    DataUnavailableError
        If some files have no usable copy in any source.
    """
    spec = (registry if registry is not None else load_registry()).dataset(dataset)
    raw_dir = Path(raw_dir).resolve()
    raw_dir.mkdir(parents=True, exist_ok=True)
    mirror_dir, mirror_url = parse_mirror(mirror)
    started = time.monotonic()
    logger.info("Acquiring %s into %s (mirror: %s)", dataset, raw_dir, mirror or "none")

    run = _Acquisition(spec, raw_dir, timeout, progress)
    run.collect_directory(raw_dir, "raw_dir")
    if mirror_dir is not None and run.missing():
        run.collect_directory(mirror_dir / dataset, "mirror")
    if allow_unverified and run.missing():
        run.collect_unverified([raw_dir] + ([mirror_dir / dataset] if mirror_dir is not None else []))
    if mirror_url is not None and run.missing():
        run.download(f"{mirror_url}/{dataset}", "mirror")
    if run.missing():
        run.download(None, "registry")
    if run.missing():
        raise DataUnavailableError(run.unavailable_message(mirror, allow_unverified))

    manifest = build_manifest(dataset, raw_dir, run.acquired_files())
    save_json(raw_dir / MANIFEST_NAME, manifest)
    counts = Counter(entry["verification"] for entry in manifest["files"].values())
    logger.info(
        "Acquired %s: %d files (%s) in %.1f s; manifest %s",
        dataset,
        len(manifest["files"]),
        ", ".join(f"{count} {verification}" for verification, count in sorted(counts.items())),
        time.monotonic() - started,
        raw_dir / MANIFEST_NAME,
    )
    return manifest


def parse_mirror(mirror: str | os.PathLike | None) -> tuple[Path | None, str | None]:
    """Split a mirror setting into a local folder or a base URL.

    Returns
    -------
    tuple of (pathlib.Path or None, str or None)
        The folder for a local mirror (a path or a ``file://`` URL), or the
        base URL without a trailing slash for a remote one.

    Raises
    ------
    ValueError
        If the URL scheme is not supported or the folder does not exist.
    """
    if mirror is None or str(mirror) == "":
        return None, None
    text = str(mirror)
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        if parts.scheme == "file":
            text = urllib.parse.unquote(parts.path)
        elif parts.scheme in SUPPORTED_SCHEMES:
            return None, text.rstrip("/")
        else:
            raise ValueError(
                f"mirror URL {text!r} has unsupported scheme {parts.scheme!r}; use a folder or a "
                f"{', '.join(SUPPORTED_SCHEMES)} or file URL"
            )
    folder = Path(text).expanduser().resolve()
    if not folder.is_dir():
        raise ValueError(f"mirror folder {folder} does not exist; fix the mirror setting or remove it")
    return folder, None


class _Acquisition:
    """State of one ``acquire`` call: the files found so far and every failed attempt."""

    def __init__(self, spec: DatasetSpec, raw_dir: Path, timeout: float, progress: bool) -> None:
        self.spec = spec
        self.raw_dir = raw_dir
        self.timeout = timeout
        self.progress = progress
        self.pins = PinStore(raw_dir / PIN_FILE_NAME) if spec.pins_checksums else None
        self.found: dict[str, AcquiredFile] = {}
        self.attempts: list[tuple[str, str]] = []
        self.local_copy_rejected = False
        # Set when an unverified copy with its own file set (the registry's
        # unverified_copy patterns) replaced the registry's logical files.
        self.replaced_by_unverified_copy = False

    def missing(self) -> list[FileSpec]:
        """Return the registry files that have no accepted copy yet."""
        if self.replaced_by_unverified_copy:
            return []
        return [file for key, file in self.spec.files.items() if key not in self.found]

    def acquired_files(self) -> list[AcquiredFile]:
        """Return the accepted files, registry files first in registry order."""
        ordered = [self.found[key] for key in self.spec.files if key in self.found]
        return ordered + [self.found[key] for key in sorted(self.found) if key not in self.spec.files]

    # Local folders

    def collect_directory(self, directory: Path, source: str) -> None:
        """Accept verified copies of missing files, and extract missing members of verified archives, from a folder."""
        if not directory.is_dir():
            self.attempts.append((str(directory), "folder not found"))
            return
        for file in self.missing():
            for name in file.local_names():
                path = directory / name
                if not path.is_file():
                    continue
                try:
                    evidence = self._verify_copy(file, path, origin=str(path))
                except (VerificationError, ValueError) as error:
                    self._reject(str(path), f"verification failed: {error}")
                    self.local_copy_rejected = True
                    continue
                self._accept(file.key, path, evidence, source, origin=str(path))
                break

        for archive in self._archives_needed():
            path = directory / archive.name
            if path.is_file():
                self._use_archive(archive, path, source, origin=str(path))
        if source == "mirror":
            logger.info("Mirror folder %s: %d of %d files found so far", directory, len(self.found), len(self.spec.files))

    def collect_unverified(self, directories: list[Path]) -> None:
        """Accept a local copy that failed verification, after a content check."""
        for directory in directories:
            if not directory.is_dir():
                continue
            source = "raw_dir" if directory.resolve() == self.raw_dir else "mirror"
            try:
                if self.spec.unverified_copy:
                    copy = find_pattern_copy(self.spec, directory, self.pins)
                    if copy is None:
                        continue
                    self.found = {}
                    for key, (path, evidence) in copy.items():
                        self._accept(key, path, evidence, source, origin=str(path.resolve()))
                    self.replaced_by_unverified_copy = True
                    return
                for file in self.missing():
                    path = next((directory / name for name in file.local_names() if (directory / name).is_file()), None)
                    if path is not None:
                        evidence = check_unverified_file(path, file.format, file.shape, self.spec.n_classes)
                        self._accept(file.key, path, evidence, source, origin=str(path))
            except ValueError as error:
                self._reject(str(directory), f"content check of the unverified copy failed: {error}")
                continue
            if not self.missing():
                return

    # Downloads

    def download(self, base_url: str | None, source: str) -> None:
        """Download missing files and archives from ``base_url`` (a mirror) or, when None, from the registry's URLs."""
        for file in [file for file in self.missing() if file.archive is None]:
            urls = [f"{base_url}/{file.path}"] if base_url else list(file.urls)
            self._download_file(file, urls, source)

        for archive in self._archives_needed():
            urls = [f"{base_url}/{archive.name}"] if base_url else list(archive.urls)
            self._download_archive(archive, urls, source)

        # A URL mirror may contain extracted files instead of the archive, like a local mirror folder.
        if base_url:
            for file in [file for file in self.missing() if file.archive is not None]:
                self._download_file(file, [f"{base_url}/{file.path}"], source)

    def _download_file(self, file: FileSpec, urls: list[str], source: str) -> None:
        target = self.raw_dir / file.path
        results: list[Evidence | None] = []

        def verify(candidate: Path) -> None:
            evidence = verify_file(file, candidate, self.pins)
            if evidence is None:
                try:
                    check_structure(file, candidate, self.spec.n_classes)
                except ValueError as error:
                    raise VerificationError(str(error)) from error
            results.append(evidence)

        # The size of a .gz file is only known for the published compression,
        # so it is not enforced when a recompressed copy is acceptable.
        size = file.size if file.gzip_content is None else None
        try:
            url = download_file(
                urls, target, size=size, verify=verify, timeout=self.timeout, progress=self.progress
            )
        except DownloadError as error:
            self.attempts.extend(error.attempts)
            return
        evidence = results[-1] if results[-1] is not None else self._pin_first_copy(file.path, target, url)
        self._accept(file.key, target, evidence, source, origin=url)

    def _download_archive(self, archive: ArchiveSpec, urls: list[str], source: str) -> None:
        members = self._missing_members(archive)
        pinned = self.pins.get(archive.name) if self.pins is not None else None

        def verify(candidate: Path) -> None:
            if archive.md5 is None and pinned is None:
                _check_archive_listing(candidate, members)

        try:
            url = download_file(
                urls,
                self.raw_dir / archive.name,
                size=archive.size,
                md5=archive.md5,
                sha256=pinned,
                verify=verify,
                timeout=self.timeout,
                progress=self.progress,
            )
        except DownloadError as error:
            self.attempts.extend(error.attempts)
            return
        self._use_archive(archive, self.raw_dir / archive.name, source, origin=url)

    # Archives

    def _use_archive(self, archive: ArchiveSpec, path: Path, source: str, origin: str) -> None:
        """Verify an archive, extract its missing members into the raw folder and accept them."""
        members = self._missing_members(archive)
        if not members:
            return
        targets = {member.path: self.raw_dir / member.path for member in members}
        try:
            evidence = verify_archive(archive, path, self.pins)
            first_copy = evidence is None
            if first_copy:
                _check_archive_listing(path, members)
            extract_members(path, targets)
            member_checksums = {
                member.key: self._check_member(member, targets[member.path], first_copy, origin) for member in members
            }
            if first_copy:
                evidence = self._pin_first_copy(archive.name, path, origin)
        except (VerificationError, ValueError) as error:
            self._reject(origin, f"archive rejected: {error}")
            for target in targets.values():
                target.unlink(missing_ok=True)
            return

        archive_checksum = {f"archive_{algorithm}": digest for algorithm, digest in evidence.checksum.items()}
        for member in members:
            checksum = {**archive_checksum, **member_checksums[member.key]}
            self._accept(
                member.key, targets[member.path], Evidence(evidence.verification, checksum), source, origin, archive.name
            )

    def _check_member(self, member: FileSpec, path: Path, first_copy: bool, origin: str) -> dict[str, str]:
        """Check an extracted member and return its own checksum. Raises VerificationError or ValueError."""
        if member.md5 is not None:
            return verify_file(member, path, None).checksum
        if self.pins is None:
            return {}
        if first_copy:
            check_structure(member, path, self.spec.n_classes)
        sha256 = file_digest(path, "sha256")
        pinned = self.pins.get(member.path)
        if pinned is None:
            self.pins.pin(member.path, sha256, origin)
        elif pinned != sha256:
            raise VerificationError(f"{member.path}: SHA-256 {sha256} differs from the value pinned in {self.pins.path}")
        return {"sha256": sha256}

    def _archives_needed(self) -> list[ArchiveSpec]:
        names = {file.archive for file in self.missing() if file.archive is not None}
        return [archive for name, archive in self.spec.archives.items() if name in names]

    def _missing_members(self, archive: ArchiveSpec) -> list[FileSpec]:
        return [file for file in self.missing() if file.archive == archive.name]

    # Verification and bookkeeping

    def _verify_copy(self, file: FileSpec, path: Path, origin: str) -> Evidence:
        evidence = verify_file(file, path, self.pins)
        if evidence is None:
            check_structure(file, path, self.spec.n_classes)
            evidence = self._pin_first_copy(file.path, path, origin)
        return evidence

    def _pin_first_copy(self, relative_path: str, path: Path, origin: str) -> Evidence:
        if self.pins is None:
            raise VerificationError(f"{path} has no checksum to verify against")
        sha256 = file_digest(path, "sha256")
        self.pins.pin(relative_path, sha256, origin)
        return Evidence(PINNED_ON_FIRST_USE, {"sha256": sha256})

    def _accept(
        self, key: str, path: Path, evidence: Evidence, source: str, origin: str, archive: str | None = None
    ) -> None:
        self.found[key] = AcquiredFile(
            key=key,
            path=path.resolve(),
            verification=evidence.verification,
            source=source,
            origin=origin,
            checksum=evidence.checksum,
            archive=archive,
        )
        logger.info("%s: %s (%s, from %s)", key, path, evidence.verification, origin)

    def _reject(self, where: str, reason: str) -> None:
        logger.warning("Not using %s: %s", where, reason)
        self.attempts.append((where, reason))

    def unavailable_message(self, mirror: str | os.PathLike | None, allow_unverified: bool) -> str:
        """Describe the missing files, every failed attempt and how to provide the files."""
        missing = self.missing()
        names = [file.path for file in missing if file.archive is None]
        descriptions = list(names)
        for archive in self._archives_needed():
            names.append(archive.name)
            extracted = ", ".join(member.path for member in self._missing_members(archive))
            descriptions.append(f"{archive.name} (or the extracted files {extracted})")

        dataset = self.spec.name
        lines = [f"dataset {dataset!r} is not available: no usable copy of {len(missing)} files:"]
        lines += [f"  - {description}" for description in descriptions]
        lines.append(f"Mirror setting: {mirror if mirror else 'not set'}. Sources tried:")
        lines += [f"  - {where}: {reason}" for where, reason in self.attempts]
        lines += [
            "Provide the files in one of two ways:",
            f"  1. set the mirror setting to a folder or base URL that holds them as {dataset}/<file name> "
            f"(for example <mirror>/{dataset}/{names[0]}), or",
            f"  2. place them in {self.raw_dir}.",
        ]
        if self.local_copy_rejected and not allow_unverified:
            lines.append(
                "A local copy failed verification (see above). If you trust it, enable allow_unverified to use it "
                "after a content check."
            )
        return "\n".join(lines)


def _check_archive_listing(path: Path, members: list[FileSpec]) -> None:
    """Check that an archive contains each member as a regular file of the expected size."""
    try:
        listing = list_regular_members(path)
    except ValueError as error:
        raise VerificationError(str(error)) from error
    for member in members:
        if member.path not in listing:
            raise VerificationError(f"archive has no regular file {member.path}")
        if member.size is not None and listing[member.path] != member.size:
            raise VerificationError(f"{member.path} is {listing[member.path]} bytes in the archive, expected {member.size}")

