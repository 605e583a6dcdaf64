"""The acquisition manifest: where each raw file of a dataset is and how it was verified.

``acquire`` writes ``manifest.json`` in the dataset's raw folder and later
stages read the raw files only through it, so they never need to know whether
a file was downloaded, extracted or referenced in place from a local mirror.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bdnn import __version__
from bdnn.data.verify import UNVERIFIED, VERIFICATIONS

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class AcquiredFile:
    """One logical file made available by ``acquire``.

    ``source`` is the stage that provided it (``raw_dir``, ``mirror`` or
    ``registry``). ``origin`` is the local path or URL its content came from,
    and ``archive`` names the archive it was extracted from, if any.
    """

    key: str
    path: Path
    verification: str
    source: str
    origin: str
    checksum: dict[str, str] = field(default_factory=dict)
    archive: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the manifest entry as JSON-compatible values."""
        return {
            "path": str(self.path),
            "verification": self.verification,
            "checksum": dict(self.checksum),
            "source": self.source,
            "origin": self.origin,
            "archive": self.archive,
        }


def build_manifest(dataset: str, raw_dir: Path, files: list[AcquiredFile]) -> dict[str, Any]:
    """Assemble the manifest of a dataset from its acquired files, in the given order."""
    return {
        "dataset": dataset,
        "raw_dir": str(raw_dir),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bdnn_version": __version__,
        "verified": all(item.verification != UNVERIFIED for item in files),
        "files": {item.key: item.to_json() for item in files},
    }


def read_manifest(path: str | os.PathLike, dataset: str | None = None) -> dict[str, Any]:
    """Read and check a manifest written by ``acquire``.

    Parameters
    ----------
    path : path-like
        The ``manifest.json`` file.
    dataset : str, optional
        Dataset the manifest must describe.

    Returns
    -------
    dict
        The manifest, with ``files`` mapping each key to its entry.

    Raises
    ------
    FileNotFoundError
        If the manifest or a file it lists does not exist.
    ValueError
        If the manifest is malformed or describes another dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found; run the acquire step for this dataset first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"manifest {path} is not valid JSON ({error}); run the acquire step again") from error

    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"manifest {path} has no 'files' mapping; run the acquire step again")
    if dataset is not None and manifest.get("dataset") != dataset:
        raise ValueError(f"manifest {path} describes dataset {manifest.get('dataset')!r}, expected {dataset!r}")

    for key, entry in manifest["files"].items():
        if not isinstance(entry, dict) or entry.get("verification") not in VERIFICATIONS or "path" not in entry:
            raise ValueError(f"manifest {path}: entry {key!r} needs 'path' and a 'verification' in {VERIFICATIONS}")
        if not Path(entry["path"]).is_file():
            raise FileNotFoundError(
                f"manifest {path}: file {entry['path']} of {key!r} no longer exists; run the acquire step again"
            )
    return manifest
