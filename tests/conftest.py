"""Shared fixtures: local HTTP and FTP servers on 127.0.0.1 and a closed port."""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from http_server import FileServer


@pytest.fixture(autouse=True)
def bypass_proxies_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep urllib from sending requests for the local test servers to a proxy set in the environment."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """HTTP server for files written under ``tmp_path / "www"``."""
    with FileServer(tmp_path / "www") as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with no listener (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FtpServerState:
    """Files root, base URL and observed REST commands of the test FTP server."""

    root: Path
    base_url: str
    rest_supported: bool = True
    rest_offsets: list[int] = field(default_factory=list)

    def add_file(self, relative_path: str, content: bytes) -> str:
        """Write ``content`` under ``root`` and return its ftp:// URL."""
        path = self.root / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return f"{self.base_url}/{relative_path}"


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServerState]:
    """Anonymous read-only FTP server (pyftpdlib) for files under ``tmp_path / "ftp"``.

    Setting ``rest_supported`` to False makes the server respond to REST with
    502, like a server that cannot resume.
    """
    # pyftpdlib 2.x imports the deprecated asyncore and asynchat modules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pyftpdlib")
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path / "ftp"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root))
    state = FtpServerState(root=root, base_url="")

    class RecordingHandler(FTPHandler):
        def ftp_REST(self, line: str) -> None:  # noqa: N802 (name fixed by pyftpdlib)
            state.rest_offsets.append(int(line))
            if state.rest_supported:
                super().ftp_REST(line)
            else:
                self.respond("502 Command not implemented.")

    RecordingHandler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), RecordingHandler)
    host, port = server.socket.getsockname()[:2]
    state.base_url = f"ftp://{host}:{port}"

    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    stop.set()
    thread.join(timeout=5)
