"""Logging set-up for pipeline jobs."""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_file: str | os.PathLike | None = None, level: int = logging.INFO) -> None:
    """Send log records of every module to standard error and, if given, to ``log_file``.

    Parameters
    ----------
    log_file : path-like, optional
        File that receives a copy of every record (a Snakemake rule's ``log:``).
    level : int
        Minimum level of the records kept.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    # Without this, a job's fatal error reaches only the terminal and not its log file.
    logging.getLogger("bdnn").critical("job failed: %s", error, exc_info=(kind, error, traceback))
