"""Verified, resumable downloads over HTTP(S) and FTP with mirror fallback.

A download goes to ``<destination>.part`` next to the destination. When that
file already exists, the transfer resumes from its end with an HTTP ``Range``
request or the FTP ``REST`` command. When the server responds with 200 instead
of 206, or rejects REST, the file is rewritten from the start. The result is
checked for size and checksum and only then renamed to the destination, so the
destination never contains a partial or unverified file.

Each URL is tried in turn. A failed transfer keeps the partial file so that the
next URL (a mirror of the same file) or a later run can resume it. A copy
that fails verification is deleted. If it came from a resumed transfer, the
same URL is tried once more from the start, because the stale part may be
the cause.
"""

from __future__ import annotations

import ftplib
import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from bdnn import __version__
from bdnn.data.checksums import file_digest

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
SUPPORTED_SCHEMES = ("http", "https", "ftp")
PARTIAL_SUFFIX = ".part"
_CHUNK_BYTES = 1 << 20

# FTP replies to REST that mean the server does not support resuming:
# 500/501 syntax error, 502 not implemented, 504 not implemented for that parameter.
_REST_UNSUPPORTED_CODES = ("500", "501", "502", "504")

Verifier = Callable[[Path], None]


class VerificationError(ValueError):
    """Raised when a downloaded or local copy does not match its expected size or checksum."""


class TransferError(OSError):
    """Raised when a transfer ends early or the server's reply is inconsistent."""


class DownloadError(RuntimeError):
    """Raised when every URL of a file failed.

    Attributes
    ----------
    destination : pathlib.Path
        The file that could not be written.
    attempts : list of (str, str)
        Each URL tried, with the reason it failed, in the order tried.
    """

    def __init__(self, destination: Path, attempts: list[tuple[str, str]]) -> None:
        self.destination = destination
        self.attempts = attempts
        tried = "\n".join(f"  - {url}: {reason}" for url, reason in attempts)
        super().__init__(f"could not download {destination.name}; every URL failed:\n{tried}")


def download_file(
    urls: Sequence[str],
    destination: str | os.PathLike,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    verify: Verifier | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> str:
    """Download a file from the first URL that delivers a valid copy.

    Parameters
    ----------
    urls : sequence of str
        ``http``, ``https`` or ``ftp`` URLs of the same file, tried in order.
    destination : path-like
        Final path. Its parent folder is created if missing. The temporary
        file is ``destination`` with ``.part`` appended.
    size : int, optional
        Expected size in bytes.
    md5, sha256 : str, optional
        Expected lowercase hexadecimal digests.
    verify : callable, optional
        Extra check called with the path of the complete temporary file after
        the size and checksum checks. It raises :class:`VerificationError`
        to reject the copy.
    timeout : float
        Seconds allowed for connecting and for each blocking read.
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    str
        The URL that delivered the file.

    Raises
    ------
    ValueError
        If ``urls`` is empty or a URL has an unsupported scheme.
    DownloadError
        If no URL delivered a valid copy. It lists every URL tried and why it failed.
    """
    if not urls:
        raise ValueError(f"no URL given for {destination}")
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f"URL {url!r} has scheme {scheme!r}; supported schemes are {SUPPORTED_SCHEMES}")

    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + PARTIAL_SUFFIX)
    attempts: list[tuple[str, str]] = []

    for url in urls:
        try:
            _download_one(url, partial, size, md5, sha256, verify, timeout, progress)
        except VerificationError as error:
            logger.warning("Rejected %s: %s", url, error)
            attempts.append((url, f"verification failed: {error}"))
            continue
        except (OSError, EOFError, http.client.HTTPException, ftplib.Error) as error:
            reason = describe_error(error)
            logger.warning("Download of %s failed: %s", url, reason)
            attempts.append((url, reason))
            continue
        os.replace(partial, destination)
        return url

    raise DownloadError(destination, attempts)


def describe_error(error: BaseException) -> str:
    """Return a one-line description of a transfer error for logs and messages."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect: {error.reason}"
    if isinstance(error, http.client.IncompleteRead):
        return f"truncated transfer: connection closed {error.expected} bytes before the end"
    if isinstance(error, TransferError):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"timed out: {error}"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _download_one(
    url: str,
    partial: Path,
    size: int | None,
    md5: str | None,
    sha256: str | None,
    verify: Verifier | None,
    timeout: float,
    progress: bool,
) -> None:
    """Fetch ``url`` into ``partial`` and verify it; retry once from scratch if a resumed copy fails."""
    if partial.exists() and size is not None and partial.stat().st_size > size:
        logger.info("Discarding %s: it is larger than the expected %d bytes", partial, size)
        partial.unlink()

    started = time.monotonic()
    resumed_from = _transfer(url, partial, size, timeout, progress)
    try:
        _verify(partial, size, md5, sha256, verify)
    except VerificationError as error:
        partial.unlink()
        if not resumed_from:
            raise
        logger.warning("Resumed copy of %s failed verification (%s); downloading it again from the start", url, error)
        _transfer(url, partial, size, timeout, progress)
        try:
            _verify(partial, size, md5, sha256, verify)
        except VerificationError:
            partial.unlink()
            raise

    elapsed = time.monotonic() - started
    logger.info("Downloaded %s (%d bytes) in %.1f s", url, partial.stat().st_size, elapsed)


def _transfer(url: str, partial: Path, size: int | None, timeout: float, progress: bool) -> int:
    """Complete ``partial`` from ``url`` and return the offset the transfer resumed from (0 for a full transfer)."""
    offset = partial.stat().st_size if partial.exists() else 0
    if offset and size is not None and offset == size:
        logger.info("%s already has all %d bytes; verifying it", partial, size)
        return offset
    if offset:
        logger.info("Resuming %s at byte %d from %s", partial.name, offset, url)
    else:
        logger.info("Downloading %s", url)

    if urllib.parse.urlsplit(url).scheme == "ftp":
        return _transfer_ftp(url, partial, offset, timeout, progress)
    return _transfer_http(url, partial, offset, timeout, progress)


def _transfer_http(url: str, partial: Path, offset: int, timeout: float, progress: bool) -> int:
    headers = {"User-Agent": f"bdnn/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # 416: the range starts at or after the end of the resource, so the part is not a prefix of it.
        error.close()
        logger.info("Server rejected the range of %s (HTTP 416); downloading it again from the start", partial.name)
        partial.unlink()
        return _transfer_http(url, partial, 0, timeout, progress)

    with response:
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header is not None else None
        if offset and response.status == 206:
            _check_content_range(response.headers.get("Content-Range"), offset, url)
        elif offset:
            logger.info("Server ignored the range request for %s (HTTP %d); restarting from byte 0", url, response.status)
            offset = 0
        total = None if length is None else offset + length
        _write_stream(response, partial, offset, total, url, progress)
    return offset


def _check_content_range(content_range: str | None, offset: int, url: str) -> None:
    # Content-Range has the form "bytes <first>-<last>/<total or *>".
    try:
        unit, span = (content_range or "").split(" ", 1)
        first = int(span.split("-", 1)[0])
    except ValueError:
        raise TransferError(f"{url} responded 206 with an invalid Content-Range {content_range!r}") from None
    if unit != "bytes" or first != offset:
        raise TransferError(f"{url} responded to a range request from byte {offset} with Content-Range {content_range!r}")


def _write_stream(source: BinaryIO, partial: Path, offset: int, total: int | None, url: str, progress: bool) -> None:
    with open(partial, "ab" if offset else "wb") as output, _progress_bar(partial, offset, total, progress) as bar:
        while chunk := source.read(_CHUNK_BYTES):
            output.write(chunk)
            bar.update(len(chunk))
    received = partial.stat().st_size
    if total is not None and received != total:
        raise TransferError(f"truncated transfer: received {received} of {total} bytes from {url}")


def _transfer_ftp(url: str, partial: Path, offset: int, timeout: float, progress: bool) -> int:
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username) if parts.username else "anonymous"
    password = urllib.parse.unquote(parts.password) if parts.password else "anonymous@"
    remote_path = urllib.parse.unquote(parts.path)

    with ftplib.FTP(timeout=timeout) as ftp:
        ftp.connect(parts.hostname or "", parts.port or ftplib.FTP_PORT)
        ftp.login(user, password)
        ftp.voidcmd("TYPE I")
        try:
            total = ftp.size(remote_path)
        except ftplib.error_perm:
            total = None

        try:
            _retrieve_ftp(ftp, remote_path, partial, offset, total, progress)
        except (ftplib.error_perm, ftplib.error_reply) as error:
            if not offset or not str(error).startswith(_REST_UNSUPPORTED_CODES):
                raise
            logger.info("FTP server rejected REST for %s (%s); restarting from byte 0", url, error)
            offset = 0
            _retrieve_ftp(ftp, remote_path, partial, offset, total, progress)

    received = partial.stat().st_size
    if total is not None and received != total:
        raise TransferError(f"truncated transfer: received {received} of {total} bytes from {url}")
    return offset


def _retrieve_ftp(
    ftp: ftplib.FTP, remote_path: str, partial: Path, offset: int, total: int | None, progress: bool
) -> None:
    with open(partial, "ab" if offset else "wb") as output, _progress_bar(partial, offset, total, progress) as bar:

        def write(chunk: bytes) -> None:
            output.write(chunk)
            bar.update(len(chunk))

        ftp.retrbinary(f"RETR {remote_path}", write, blocksize=_CHUNK_BYTES, rest=offset or None)


def _progress_bar(partial: Path, offset: int, total: int | None, progress: bool) -> tqdm:
    name = partial.name.removesuffix(PARTIAL_SUFFIX)
    return tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not progress
    )


def _verify(path: Path, size: int | None, md5: str | None, sha256: str | None, verify: Verifier | None) -> None:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise VerificationError(f"size is {actual_size} bytes, expected {size}")
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None:
            actual = file_digest(path, algorithm)
            if actual != expected:
                raise VerificationError(f"{algorithm.upper()} is {actual}, expected {expected}")
    if verify is not None:
        verify(path)
