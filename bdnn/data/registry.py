"""Typed, validated view of the dataset registry (``registry.yaml``).

The registry is data: every URL, size and checksum of the raw benchmark files
is in the YAML file. This module only parses and checks it, so a typo fails
when the registry is loaded and not halfway through a download.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

logger = logging.getLogger(__name__)

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("registry.yaml")

FILE_FORMATS = ("idx-images", "idx-labels", "cifar-batch", "cifar-meta", "fvecs", "ivecs", "bvecs")
CHECKSUM_POLICIES = ("published", "pin-on-first-use")

_MD5_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_URL_SCHEMES = ("http://", "https://", "ftp://")


@dataclass(frozen=True)
class GzipContent:
    """Size in bytes and MD5 of the decompressed content of a ``.gz`` file."""

    size: int | None
    md5: str


@dataclass(frozen=True)
class ArchiveSpec:
    """An archive that provides some of a dataset's files.

    ``urls`` starts with the primary URL, followed by the mirrors in the order
    they are tried.
    """

    name: str
    urls: tuple[str, ...]
    size: int | None
    md5: str | None


@dataclass(frozen=True)
class FileSpec:
    """One logical file of a dataset.

    ``path`` is relative to the dataset's raw folder and uses ``/``. A file
    has either its own ``urls`` or the name of the ``archive`` it comes from.
    ``shape`` is the array shape its reader returns, when fixed.
    """

    key: str
    path: str
    format: str
    shape: tuple[int, ...] | None
    urls: tuple[str, ...]
    archive: str | None
    size: int | None
    md5: str | None
    gzip_content: GzipContent | None

    @property
    def name(self) -> str:
        """File name without folders."""
        return PurePosixPath(self.path).name

    def local_names(self) -> tuple[str, ...]:
        """Return the relative paths under which a local copy is accepted.

        A ``.gz`` file with known decompressed content is also accepted
        decompressed, under the same path without ``.gz``.
        """
        if self.gzip_content is not None and self.path.endswith(".gz"):
            return (self.path, self.path[: -len(".gz")])
        return (self.path,)


@dataclass(frozen=True)
class UnverifiedPattern:
    """Glob of files accepted from an unverified extracted copy, with their format."""

    pattern: str
    format: str
    required: bool


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the registry states about one dataset."""

    name: str
    title: str
    homepage: str | None
    checksums: str
    n_classes: int | None
    archives: Mapping[str, ArchiveSpec]
    files: Mapping[str, FileSpec]
    unverified_copy: tuple[UnverifiedPattern, ...]

    @property
    def pins_checksums(self) -> bool:
        """Whether checksums are pinned from the first copy (none are published)."""
        return self.checksums == "pin-on-first-use"


@dataclass(frozen=True)
class Registry:
    """All datasets of a registry file, by name."""

    datasets: Mapping[str, DatasetSpec]
    source: str

    def dataset(self, name: str) -> DatasetSpec:
        """Return the entry of dataset ``name``.

        Raises
        ------
        ValueError
            If the registry has no such dataset.
        """
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets))
            raise ValueError(f"unknown dataset {name!r} in registry {self.source}; known datasets: {known}")
        return self.datasets[name]


class RegistryError(ValueError):
    """Raised when a registry file is not valid."""


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Load and validate a dataset registry.

    Parameters
    ----------
    path : path-like, optional
        YAML registry file. Defaults to the registry shipped with bdnn.

    Returns
    -------
    Registry
        The parsed registry.

    Raises
    ------
    RegistryError
        If the file is not valid YAML or does not follow the registry format.
        The message names the file and the entry at fault.
    """
    path = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise RegistryError(f"registry {path} is not valid YAML: {error}") from error
    registry = parse_registry(document, source=str(path))
    logger.debug("Loaded registry %s with datasets %s", path, ", ".join(registry.datasets))
    return registry


def parse_registry(document: Any, source: str = "<registry>") -> Registry:
    """Validate a registry already read into Python objects.

    Parameters
    ----------
    document : Any
        The parsed YAML document, a mapping with ``format_version: 1`` and
        ``datasets``.
    source : str
        Name of the registry used in error messages.

    Returns
    -------
    Registry
        The validated registry.

    Raises
    ------
    RegistryError
        If an entry is missing, has the wrong type or an invalid value.
    """
    document = _mapping(document, source)
    version = document.get("format_version")
    if version != 1:
        raise RegistryError(f"{source}: format_version must be 1, got {version!r}")
    datasets_node = _mapping(document.get("datasets"), f"{source}: datasets")
    datasets = {
        name: _parse_dataset(str(name), node, f"{source}: datasets.{name}") for name, node in datasets_node.items()
    }
    return Registry(datasets=datasets, source=source)


def _parse_dataset(name: str, node: Any, where: str) -> DatasetSpec:
    node = _mapping(node, where)
    _reject_unknown(node, {"title", "homepage", "checksums", "n_classes", "archives", "files", "unverified_copy"}, where)

    checksums = node.get("checksums", "published")
    if checksums not in CHECKSUM_POLICIES:
        raise RegistryError(f"{where}.checksums must be one of {CHECKSUM_POLICIES}, got {checksums!r}")

    archives = {
        str(archive_name): _parse_archive(str(archive_name), archive_node, f"{where}.archives.{archive_name}")
        for archive_name, archive_node in _mapping(node.get("archives", {}), f"{where}.archives").items()
    }
    files_node = _mapping(node.get("files"), f"{where}.files")
    if not files_node:
        raise RegistryError(f"{where}.files must list at least one file")
    files = {
        str(key): _parse_file(str(key), file_node, f"{where}.files.{key}", archives)
        for key, file_node in files_node.items()
    }
    if checksums == "published":
        for spec in files.values():
            if spec.md5 is None and spec.gzip_content is None:
                raise RegistryError(f"{where}.files.{spec.key} needs md5 or gzip_content.md5 (checksums: published)")

    unverified = tuple(
        _parse_unverified(str(pattern), pattern_node, f"{where}.unverified_copy.{pattern}")
        for pattern, pattern_node in _mapping(node.get("unverified_copy", {}), f"{where}.unverified_copy").items()
    )
    return DatasetSpec(
        name=name,
        title=_string(node.get("title", name), f"{where}.title"),
        homepage=_optional_string(node.get("homepage"), f"{where}.homepage"),
        checksums=checksums,
        n_classes=_optional_int(node.get("n_classes"), f"{where}.n_classes"),
        archives=archives,
        files=files,
        unverified_copy=unverified,
    )


def _parse_archive(name: str, node: Any, where: str) -> ArchiveSpec:
    node = _mapping(node, where)
    _reject_unknown(node, {"url", "mirrors", "size", "md5"}, where)
    _relative_path(name, where)
    return ArchiveSpec(
        name=name,
        urls=_urls(node, where, required=True),
        size=_optional_int(node.get("size"), f"{where}.size"),
        md5=_optional_md5(node.get("md5"), f"{where}.md5"),
    )


def _parse_file(key: str, node: Any, where: str, archives: Mapping[str, ArchiveSpec]) -> FileSpec:
    node = _mapping(node, where)
    _reject_unknown(
        node, {"path", "format", "shape", "url", "mirrors", "archive", "size", "md5", "gzip_content"}, where
    )
    path = _relative_path(_string(node.get("path"), f"{where}.path"), f"{where}.path")
    file_format = node.get("format")
    if file_format not in FILE_FORMATS:
        raise RegistryError(f"{where}.format must be one of {FILE_FORMATS}, got {file_format!r}")

    archive = _optional_string(node.get("archive"), f"{where}.archive")
    has_url = "url" in node
    if has_url == (archive is not None):
        raise RegistryError(f"{where} must have exactly one of 'url' (downloaded directly) or 'archive'")
    if archive is not None and archive not in archives:
        raise RegistryError(f"{where}.archive names {archive!r}, which is not listed under archives")

    shape = node.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape):
            raise RegistryError(f"{where}.shape must be a list of positive integers, got {shape!r}")
        shape = tuple(shape)

    gzip_content = None
    if node.get("gzip_content") is not None:
        gzip_node = _mapping(node["gzip_content"], f"{where}.gzip_content")
        _reject_unknown(gzip_node, {"size", "md5"}, f"{where}.gzip_content")
        gzip_content = GzipContent(
            size=_optional_int(gzip_node.get("size"), f"{where}.gzip_content.size"),
            md5=_md5(gzip_node.get("md5"), f"{where}.gzip_content.md5"),
        )
    return FileSpec(
        key=key,
        path=path,
        format=file_format,
        shape=shape,
        urls=_urls(node, where, required=False) if has_url else (),
        archive=archive,
        size=_optional_int(node.get("size"), f"{where}.size"),
        md5=_optional_md5(node.get("md5"), f"{where}.md5"),
        gzip_content=gzip_content,
    )


def _parse_unverified(pattern: str, node: Any, where: str) -> UnverifiedPattern:
    node = _mapping(node, where)
    _reject_unknown(node, {"format", "required"}, where)
    _relative_path(pattern, where)
    file_format = node.get("format")
    if file_format not in FILE_FORMATS:
        raise RegistryError(f"{where}.format must be one of {FILE_FORMATS}, got {file_format!r}")
    required = node.get("required", False)
    if not isinstance(required, bool):
        raise RegistryError(f"{where}.required must be true or false, got {required!r}")
    return UnverifiedPattern(pattern=pattern, format=file_format, required=required)


def _urls(node: Mapping[str, Any], where: str, required: bool) -> tuple[str, ...]:
    if "url" not in node:
        if required:
            raise RegistryError(f"{where}.url is missing")
        return ()
    mirrors = node.get("mirrors", [])
    if not isinstance(mirrors, list):
        raise RegistryError(f"{where}.mirrors must be a list of URLs, got {mirrors!r}")
    urls = (node["url"], *mirrors)
    for url in urls:
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES):
            raise RegistryError(f"{where}: {url!r} is not an http, https or ftp URL")
    return tuple(urls)


def _relative_path(value: str, where: str) -> str:
    parts = PurePosixPath(value).parts
    if value.startswith("/") or "\\" in value or not parts or ".." in parts:
        raise RegistryError(f"{where}: {value!r} must be a relative path with '/' separators and no '..'")
    return value


def _mapping(node: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise RegistryError(f"{where} must be a mapping, got {type(node).__name__}")
    return node


def _reject_unknown(node: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise RegistryError(f"{where} has unknown keys {unknown}; allowed keys are {sorted(allowed)}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _optional_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RegistryError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _md5(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MD5_PATTERN.match(value):
        raise RegistryError(f"{where} must be 32 lowercase hexadecimal digits, got {value!r}")
    return value


def _optional_md5(value: Any, where: str) -> str | None:
    return None if value is None else _md5(value, where)
