import hashlib
import logging
import time
import urllib.parse

import pytest
import yaml

from bdnn.data.acquire import DataUnavailableError, acquire
from bdnn.data.download import DownloadError, download_file
from bdnn.data.registry import DEFAULT_REGISTRY_PATH, parse_registry

CONTENT = bytes(range(256)) * 400


def md5_of(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


@pytest.fixture
def destination(tmp_path):
    return tmp_path / "out" / "file.bin"


def partial_of(destination):
    return destination.with_name(destination.name + ".part")


def test_download_good_file(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)

    used = download_file([url], destination, size=len(CONTENT), md5=md5_of(CONTENT), progress=False)

    assert used == url
    assert destination.read_bytes() == CONTENT
    assert not partial_of(destination).exists()


def test_download_wrong_checksum_fails(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)

    with pytest.raises(DownloadError) as raised:
        download_file([url], destination, md5="0" * 32, progress=False)

    assert url in str(raised.value)
    assert "MD5" in str(raised.value)
    assert not destination.exists()
    assert not partial_of(destination).exists()


def test_download_wrong_size_fails(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)

    with pytest.raises(DownloadError, match=f"expected {len(CONTENT) + 1}"):
        download_file([url], destination, size=len(CONTENT) + 1, progress=False)
    assert not destination.exists()


def test_download_truncated_transfer_fails(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)
    file_server.truncate_after["/file.bin"] = 1000

    with pytest.raises(DownloadError, match="truncated"):
        download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert not destination.exists()
    assert partial_of(destination).stat().st_size == 1000


def test_download_truncated_resumes_from_next_mirror(file_server, destination):
    broken = file_server.add_file("a/file.bin", CONTENT)
    good = file_server.add_file("b/file.bin", CONTENT)
    file_server.truncate_after["/a/file.bin"] = 1000

    used = download_file([broken, good], destination, md5=md5_of(CONTENT), progress=False)

    assert used == good
    assert destination.read_bytes() == CONTENT
    assert file_server.requests[-1] == ("/b/file.bin", "bytes=1000-")


def test_download_404_falls_back_to_next_mirror(file_server, destination, caplog):
    missing = file_server.url("missing/file.bin")
    good = file_server.add_file("file.bin", CONTENT)

    with caplog.at_level(logging.WARNING, logger="bdnn.data.download"):
        used = download_file([missing, good], destination, md5=md5_of(CONTENT), progress=False)

    assert used == good
    assert destination.read_bytes() == CONTENT
    assert "HTTP 404" in caplog.text


def test_download_resumes_partial_file_with_range(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(CONTENT[:5000])

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert file_server.requests == [("/file.bin", "bytes=5000-")]
    assert destination.read_bytes() == CONTENT


def test_download_restarts_when_range_ignored(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)
    file_server.honour_range = False
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(CONTENT[:5000])

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert destination.read_bytes() == CONTENT


def test_download_restarts_when_resumed_copy_corrupt(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(b"\xff" * 5000)

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert file_server.requests == [("/file.bin", "bytes=5000-"), ("/file.bin", None)]
    assert destination.read_bytes() == CONTENT


def test_download_restarts_when_range_not_satisfiable(file_server, destination):
    url = file_server.add_file("file.bin", CONTENT)
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(CONTENT + b"extra")

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert file_server.requests[-1] == ("/file.bin", None)
    assert destination.read_bytes() == CONTENT


def test_download_all_failures_listed(file_server, destination, closed_port):
    missing = file_server.url("missing.bin")
    refused = f"http://127.0.0.1:{closed_port}/file.bin"
    corrupt = file_server.add_file("corrupt.bin", b"not the content")

    with pytest.raises(DownloadError) as raised:
        download_file([missing, refused, corrupt], destination, md5=md5_of(CONTENT), progress=False)

    assert [url for url, _ in raised.value.attempts] == [missing, refused, corrupt]
    message = str(raised.value)
    assert "HTTP 404" in message
    assert "cannot connect" in message
    assert "verification failed" in message


def test_download_rejects_unsupported_scheme(destination):
    with pytest.raises(ValueError, match="scheme"):
        download_file(["gopher://127.0.0.1/file.bin"], destination, progress=False)


def test_ftp_download_good_file(ftp_server, destination):
    url = ftp_server.add_file("corpus/file.bin", CONTENT)

    used = download_file([url], destination, size=len(CONTENT), md5=md5_of(CONTENT), progress=False)

    assert used == url
    assert destination.read_bytes() == CONTENT
    assert ftp_server.rest_offsets == []


def test_ftp_download_resumes_with_rest(ftp_server, destination):
    url = ftp_server.add_file("file.bin", CONTENT)
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(CONTENT[:7000])

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert ftp_server.rest_offsets == [7000]
    assert destination.read_bytes() == CONTENT


def test_ftp_download_restarts_without_rest(ftp_server, destination):
    url = ftp_server.add_file("file.bin", CONTENT)
    ftp_server.rest_supported = False
    destination.parent.mkdir(parents=True)
    partial_of(destination).write_bytes(CONTENT[:7000])

    download_file([url], destination, md5=md5_of(CONTENT), progress=False)

    assert ftp_server.rest_offsets == [7000]
    assert destination.read_bytes() == CONTENT


def test_ftp_missing_file_falls_back(ftp_server, file_server, destination):
    missing = f"{ftp_server.base_url}/missing.bin"
    good = file_server.add_file("file.bin", CONTENT)

    used = download_file([missing, good], destination, md5=md5_of(CONTENT), progress=False)

    assert used == good


def test_ftp_connection_refused(closed_port, destination):
    url = f"ftp://127.0.0.1:{closed_port}/file.bin"

    with pytest.raises(DownloadError, match="refused"):
        download_file([url], destination, timeout=5, progress=False)


def registry_pointing_at(port: int):
    """Return the shipped registry with every URL moved to 127.0.0.1:port, keeping paths and schemes."""
    document = yaml.safe_load(DEFAULT_REGISTRY_PATH.read_text())

    def relocate(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        scheme = "http" if parts.scheme == "https" else parts.scheme
        return urllib.parse.urlunsplit((scheme, f"127.0.0.1:{port}", parts.path, "", ""))

    for dataset in document["datasets"].values():
        for entry in [*dataset.get("archives", {}).values(), *dataset["files"].values()]:
            if "url" in entry:
                entry["url"] = relocate(entry["url"])
                entry["mirrors"] = [relocate(url) for url in entry.get("mirrors", [])]
    return parse_registry(document, source="relocated registry")


@pytest.mark.parametrize(
    ("dataset", "expected_names"),
    [
        ("mnist", ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]),
        ("cifar10", ["cifar-10-python.tar.gz", "cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"]),
        ("sift1m", ["sift.tar.gz", "sift/sift_base.fvecs", "sift/sift_groundtruth.ivecs"]),
    ],
)
def test_acquire_offline_fails_at_once(tmp_path, closed_port, dataset, expected_names):
    registry = registry_pointing_at(closed_port)
    raw_dir = tmp_path / "raw" / dataset

    started = time.monotonic()
    with pytest.raises(DataUnavailableError) as raised:
        acquire(dataset, raw_dir, registry=registry, timeout=5, progress=False)
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert elapsed < 5
    for name in expected_names:
        assert name in message
    assert f"127.0.0.1:{closed_port}" in message
    assert "mirror setting" in message
    assert str(raw_dir.resolve()) in message
    assert not (raw_dir / "manifest.json").exists()


def test_acquire_rejects_missing_mirror_folder(tmp_path):
    with pytest.raises(ValueError, match="mirror folder"):
        acquire("mnist", tmp_path / "raw", mirror=tmp_path / "no-such-folder", progress=False)
