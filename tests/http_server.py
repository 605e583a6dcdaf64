"""Local HTTP file server for download tests, with switchable faults.

The server listens on 127.0.0.1 on an ephemeral port and serves files that
the test writes under ``root``. Per-path settings make it respond with an
error status or cut the body short, and ``honour_range`` switches HTTP
``Range`` support on or off. Every request is recorded with its Range header.
"""

from __future__ import annotations

import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE_PATTERN = re.compile(r"^bytes=(\d+)-$")


class FileServer:
    """Threaded HTTP server for the files under ``root``.

    Attributes
    ----------
    honour_range : bool
        Respond to ``Range: bytes=N-`` requests with 206 and the tail of the file.
        When False, the server ignores the header and sends the whole file with 200.
    status_overrides : dict of str to int
        Status codes to send instead of the file, by URL path (``/a/b.bin``).
    truncate_after : dict of str to int
        Number of body bytes to send before closing the connection, by URL path.
        The Content-Length header still announces the full body.
    requests : list of (str, str or None)
        Path and Range header of every request received.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.honour_range = True
        self.status_overrides: dict[str, int] = {}
        self.truncate_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        """URL of ``root``, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, relative_path: str) -> str:
        """Return the URL of a file given by its path relative to ``root``."""
        return f"{self.base_url}/{relative_path}"

    def add_file(self, relative_path: str, content: bytes) -> str:
        """Write ``content`` under ``root`` and return its URL."""
        path = self.root / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return self.url(relative_path)

    def paths_requested(self) -> list[str]:
        """Return the URL paths of all requests, in order."""
        return [path for path, _ in self.requests]

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _make_handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
            path = urlsplit(self.path).path
            range_header = self.headers.get("Range")
            server.requests.append((path, range_header))

            if path in server.status_overrides:
                self.send_error(server.status_overrides[path])
                return
            file_path = (server.root / unquote(path).lstrip("/")).resolve()
            if not file_path.is_relative_to(server.root.resolve()) or not file_path.is_file():
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            content = file_path.read_bytes()

            start = 0
            match = _RANGE_PATTERN.match(range_header or "")
            if match and server.honour_range:
                start = int(match.group(1))
                if start >= len(content):
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{len(content)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
            else:
                self.send_response(HTTPStatus.OK)
            body = content[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()

            limit = server.truncate_after.get(path)
            self.wfile.write(body if limit is None else body[:limit])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature fixed by http.server)
            pass

    return Handler
