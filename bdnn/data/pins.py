"""SHA-256 pins for datasets that have no published checksums (SIFT1M).

The first copy of such a dataset is checked by structure, and the SHA-256 of
each of its files is then stored in ``checksums.pinned.json`` in the raw
folder. Every later use verifies against the stored value, so a copy that
changes on disk or a different copy from another mirror is detected. Deleting
the pin file makes the next copy a first copy again.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bdnn.io import save_json

logger = logging.getLogger(__name__)

PIN_FILE_NAME = "checksums.pinned.json"

_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class PinStore:
    """Pinned SHA-256 digests of a dataset's files, by path relative to the raw folder.

    Parameters
    ----------
    path : path-like
        The pin file. It is read if it exists and written on every new pin.

    Raises
    ------
    ValueError
        If an existing pin file is not valid JSON or not in the pin format.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._entries: dict[str, dict[str, str]] = {}
        if self.path.exists():
            self._entries = _read_pin_file(self.path)

    def get(self, relative_path: str) -> str | None:
        """Return the pinned SHA-256 of ``relative_path``, or None if it has no pin."""
        entry = self._entries.get(relative_path)
        return entry["sha256"] if entry else None

    def pin(self, relative_path: str, sha256: str, origin: str) -> None:
        """Store the SHA-256 of ``relative_path`` and write the pin file atomically.

        Raises
        ------
        ValueError
            If the file already has a different pin.
        """
        existing = self.get(relative_path)
        if existing is not None and existing != sha256:
            raise ValueError(
                f"{relative_path} is pinned to SHA-256 {existing} in {self.path}, so {sha256} cannot be pinned; "
                "delete the pin file to accept a different copy"
            )
        self._entries[relative_path] = {
            "sha256": sha256,
            "origin": origin,
            "pinned_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        save_json(self.path, {"algorithm": "sha256", "files": self._entries})
        logger.info("Pinned SHA-256 %s for %s (from %s) in %s", sha256, relative_path, origin, self.path)


def _read_pin_file(path: Path) -> dict[str, dict[str, str]]:
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"pin file {path} is not valid JSON ({error}); fix or delete it") from error

    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(document, dict) or document.get("algorithm") != "sha256" or not isinstance(files, dict):
        raise ValueError(f"pin file {path} must contain {{'algorithm': 'sha256', 'files': {{...}}}}; fix or delete it")
    for name, entry in files.items():
        if not isinstance(entry, dict) or not _SHA256_PATTERN.match(str(entry.get("sha256", ""))):
            raise ValueError(f"pin file {path}: entry {name!r} has no valid 'sha256' value; fix or delete the file")
    return files
