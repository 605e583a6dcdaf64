"""Acquisition and canonical datasets built from tiny fake MNIST, CIFAR-10 and SIFT sources."""

import gzip
import hashlib
import io
import json
import logging
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from bdnn.data.acquire import DataUnavailableError, acquire
from bdnn.data.datasets import load_canonical, prepare_dataset
from bdnn.data.registry import load_registry

MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "idx-images", 2051),
    "train_labels": ("train-labels-idx1-ubyte.gz", "idx-labels", 2049),
    "test_images": ("t10k-images-idx3-ubyte.gz", "idx-images", 2051),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "idx-labels", 2049),
}
CIFAR_BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
SIFT_ROWS = {"learn": 6, "base": 10, "query": 3}


def md5_of(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def vecs_bytes(rows: np.ndarray) -> bytes:
    return b"".join(np.int32(rows.shape[1]).tobytes() + row.tobytes() for row in rows)


def pickle_bytes(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def tar_gz_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def write_registry(tmp_path: Path, datasets: dict):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"format_version": 1, "datasets": datasets}, sort_keys=False))
    return load_registry(path)


class FakeMnist:
    """Five training and three test images with their IDX and gzip encodings."""

    def __init__(self) -> None:
        rng = np.random.default_rng(10)
        self.arrays = {
            "train_images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, 5, dtype=np.uint8),
            "test_images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, 3, dtype=np.uint8),
        }
        self.raw = {key: idx_bytes(self.arrays[key], magic) for key, (_, _, magic) in MNIST_FILES.items()}
        # The "published" gzip files use mtime 0; copies with another mtime differ only in the wrapper.
        self.published = {key: gzip.compress(raw, mtime=0) for key, raw in self.raw.items()}

    def registry_entry(self, unreachable: str) -> dict:
        files = {}
        for key, (name, file_format, _) in MNIST_FILES.items():
            files[key] = {
                "path": name,
                "format": file_format,
                "shape": list(self.arrays[key].shape),
                "url": f"{unreachable}/mnist/{name}",
                "size": len(self.published[key]),
                "md5": md5_of(self.published[key]),
                "gzip_content": {"size": len(self.raw[key]), "md5": md5_of(self.raw[key])},
            }
        return {"checksums": "published", "n_classes": 10, "files": files}

    def write(self, folder: Path, recompress: tuple[str, ...] = ()) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for key, (name, _, _) in MNIST_FILES.items():
            content = gzip.compress(self.raw[key], mtime=12345) if key in recompress else self.published[key]
            (folder / name).write_bytes(content)


class FakeCifar:
    """Six batches of two images each, packed like cifar-10-python.tar.gz."""

    def __init__(self, seed: int = 20) -> None:
        rng = np.random.default_rng(seed)
        self.batches = {
            name: {
                b"batch_label": name.encode(),
                b"labels": [int(v) for v in rng.integers(0, 10, 2)],
                b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
            }
            for name in CIFAR_BATCHES
        }
        self.files = {f"cifar-10-batches-py/{name}": pickle_bytes(batch) for name, batch in self.batches.items()}
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        self.files["cifar-10-batches-py/batches.meta"] = pickle_bytes({b"label_names": names})
        self.archive = tar_gz_bytes(self.files)

    def registry_entry(self, unreachable: str, archive: bytes | None = None) -> dict:
        archive = self.archive if archive is None else archive
        files = {}
        for path, content in self.files.items():
            name = path.split("/")[-1]
            files[name] = {
                "path": path,
                "archive": "cifar-10-python.tar.gz",
                "format": "cifar-meta" if name == "batches.meta" else "cifar-batch",
                "md5": md5_of(content),
            }
            if name != "batches.meta":
                files[name]["shape"] = [2, 32, 32, 3]
        return {
            "checksums": "published",
            "n_classes": 10,
            "archives": {
                "cifar-10-python.tar.gz": {
                    "url": f"{unreachable}/cifar-10-python.tar.gz",
                    "size": len(archive),
                    "md5": md5_of(archive),
                }
            },
            "files": files,
            "unverified_copy": {
                "cifar-10-batches-py/data_batch_*": {"format": "cifar-batch", "required": True},
                "cifar-10-batches-py/test_batch*": {"format": "cifar-batch", "required": True},
                "cifar-10-batches-py/batches.meta": {"format": "cifar-meta", "required": False},
            },
        }

    def images(self, name: str) -> np.ndarray:
        return self.batches[name][b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


class FakeSift:
    """Learn, base and query vectors of dimension 128 and a 3 x 5 ground truth, packed like sift.tar.gz."""

    def __init__(self, base_rows: int = SIFT_ROWS["base"]) -> None:
        rng = np.random.default_rng(30)
        self.vectors = {
            "learn": rng.random((SIFT_ROWS["learn"], 128), dtype=np.float32),
            "base": rng.random((base_rows, 128), dtype=np.float32),
            "query": rng.random((SIFT_ROWS["query"], 128), dtype=np.float32),
        }
        self.groundtruth = rng.integers(0, SIFT_ROWS["base"], (SIFT_ROWS["query"], 5), dtype=np.int32)
        self.files = {f"sift/sift_{name}.fvecs": vecs_bytes(rows) for name, rows in self.vectors.items()}
        self.files["sift/sift_groundtruth.ivecs"] = vecs_bytes(self.groundtruth)
        self.archive = tar_gz_bytes(self.files)

    @staticmethod
    def registry_entry(archive_url: str) -> dict:
        files = {}
        for name, rows in SIFT_ROWS.items():
            files[name] = {
                "path": f"sift/sift_{name}.fvecs",
                "archive": "sift.tar.gz",
                "format": "fvecs",
                "shape": [rows, 128],
                "size": rows * (4 + 4 * 128),
            }
        files["groundtruth"] = {
            "path": "sift/sift_groundtruth.ivecs",
            "archive": "sift.tar.gz",
            "format": "ivecs",
            "shape": [SIFT_ROWS["query"], 5],
            "size": SIFT_ROWS["query"] * (4 + 4 * 5),
        }
        return {"checksums": "pin-on-first-use", "archives": {"sift.tar.gz": {"url": archive_url}}, "files": files}


@pytest.fixture
def unreachable(closed_port):
    return f"http://127.0.0.1:{closed_port}"


@pytest.fixture
def mirror(tmp_path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    return folder


# MNIST


def test_mnist_mirror_folder_used_in_place(tmp_path, mirror, unreachable):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    fake.write(mirror / "mnist", recompress=("train_images", "train_labels"))
    raw_dir = tmp_path / "raw" / "mnist"

    manifest = acquire("mnist", raw_dir, mirror=mirror, registry=registry, progress=False)

    files = manifest["files"]
    assert list(files) == list(MNIST_FILES)
    assert files["train_images"]["verification"] == "content-checksum"
    assert files["train_labels"]["verification"] == "content-checksum"
    assert files["test_images"]["verification"] == "archive-checksum"
    assert files["test_images"]["path"] == str((mirror / "mnist" / "t10k-images-idx3-ubyte.gz").resolve())
    assert {entry["source"] for entry in files.values()} == {"mirror"}
    assert manifest["verified"] is True
    assert json.loads((raw_dir / "manifest.json").read_text()) == manifest


def test_mnist_prepare_canonical_order(tmp_path, mirror, unreachable):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    fake.write(mirror / "mnist")
    raw_dir = tmp_path / "raw" / "mnist"
    acquire("mnist", raw_dir, mirror=mirror, registry=registry, progress=False)

    info = prepare_dataset("mnist", raw_dir / "manifest.json", tmp_path / "canonical")
    dataset = load_canonical(tmp_path / "canonical")

    assert info["parts"] == ["train", "test"]
    assert info["counts"] == {"train": 5, "test": 3}
    assert dataset.items.dtype == np.uint8
    np.testing.assert_array_equal(dataset.items, np.concatenate([fake.arrays["train_images"], fake.arrays["test_images"]]))
    assert dataset.labels.dtype == np.int16
    np.testing.assert_array_equal(dataset.labels, np.concatenate([fake.arrays["train_labels"], fake.arrays["test_labels"]]))
    np.testing.assert_array_equal(dataset.parts, [0] * 5 + [1] * 3)
    np.testing.assert_array_equal(dataset.part_indices("test"), [5, 6, 7])
    assert dataset.info["verified"] is True


def test_mnist_decompressed_copy_in_raw_dir(tmp_path, unreachable):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    raw_dir = tmp_path / "raw" / "mnist"
    raw_dir.mkdir(parents=True)
    for key, (name, _, _) in MNIST_FILES.items():
        (raw_dir / name.removesuffix(".gz")).write_bytes(fake.raw[key])

    manifest = acquire("mnist", raw_dir, registry=registry, progress=False)

    for entry in manifest["files"].values():
        assert entry["verification"] == "content-checksum"
        assert entry["source"] == "raw_dir"
        assert not entry["path"].endswith(".gz")


def test_mnist_url_mirror_downloads(tmp_path, file_server, unreachable):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    fake.write(file_server.root / "mnist", recompress=("train_images",))
    raw_dir = tmp_path / "raw" / "mnist"

    manifest = acquire("mnist", raw_dir, mirror=file_server.base_url + "/", registry=registry, progress=False)

    entry = manifest["files"]["train_images"]
    assert entry["origin"] == file_server.url("mnist/train-images-idx3-ubyte.gz")
    assert entry["path"] == str(raw_dir.resolve() / "train-images-idx3-ubyte.gz")
    assert entry["verification"] == "content-checksum"
    assert manifest["files"]["test_labels"]["verification"] == "archive-checksum"


def test_mnist_corrupt_copy_needs_allow_unverified(tmp_path, mirror, unreachable, caplog):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    fake.write(mirror / "mnist")
    altered = fake.arrays["test_labels"].copy()
    altered[0] = (altered[0] + 1) % 10
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(altered, 2049)))
    raw_dir = tmp_path / "raw" / "mnist"

    with pytest.raises(DataUnavailableError, match="allow_unverified") as raised:
        acquire("mnist", raw_dir, mirror=mirror, registry=registry, progress=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(raised.value)

    with caplog.at_level(logging.WARNING):
        manifest = acquire("mnist", raw_dir, mirror=mirror, registry=registry, allow_unverified=True, progress=False)
    assert manifest["files"]["test_labels"]["verification"] == "unverified"
    assert manifest["files"]["test_images"]["verification"] == "archive-checksum"
    assert manifest["verified"] is False
    assert "UNVERIFIED" in caplog.text


# CIFAR-10


def test_cifar_archive_extracted_from_mirror(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable)})
    (mirror / "cifar10").mkdir()
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(fake.archive)
    raw_dir = tmp_path / "raw" / "cifar10"

    manifest = acquire("cifar10", raw_dir, mirror=mirror, registry=registry, progress=False)

    entry = manifest["files"]["data_batch_3"]
    assert entry["verification"] == "archive-checksum"
    assert entry["archive"] == "cifar-10-python.tar.gz"
    assert entry["path"] == str(raw_dir.resolve() / "cifar-10-batches-py" / "data_batch_3")
    assert (raw_dir / "cifar-10-batches-py" / "batches.meta").read_bytes() == fake.files["cifar-10-batches-py/batches.meta"]

    rerun = acquire("cifar10", raw_dir, registry=registry, progress=False)
    assert {entry["verification"] for entry in rerun["files"].values()} == {"content-checksum"}
    assert {entry["source"] for entry in rerun["files"].values()} == {"raw_dir"}


def test_cifar_prepare_canonical_order(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable)})
    (mirror / "cifar10").mkdir()
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(fake.archive)
    raw_dir = tmp_path / "raw" / "cifar10"
    acquire("cifar10", raw_dir, mirror=mirror, registry=registry, progress=False)

    info = prepare_dataset("cifar10", raw_dir / "manifest.json", tmp_path / "canonical")
    dataset = load_canonical(tmp_path / "canonical", mmap=True)

    assert info["counts"] == {"train": 10, "test": 2}
    assert info["class_names"][0] == "airplane"
    assert info["part_files"]["train"] == CIFAR_BATCHES[:5]
    assert dataset.items.shape == (12, 32, 32, 3)
    expected = np.concatenate([fake.images(name) for name in CIFAR_BATCHES])
    np.testing.assert_array_equal(dataset.items, expected)
    expected_labels = np.concatenate([fake.batches[name][b"labels"] for name in CIFAR_BATCHES])
    np.testing.assert_array_equal(dataset.labels, expected_labels)
    np.testing.assert_array_equal(dataset.parts, [0] * 10 + [1] * 2)


def test_cifar_archive_traversal_member_ignored(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    absolute = tmp_path / "absolute.txt"
    archive = tar_gz_bytes({**fake.files, "../../escaped.txt": b"outside", str(absolute): b"outside"})
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable, archive)})
    (mirror / "cifar10").mkdir()
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(archive)
    raw_dir = tmp_path / "a" / "b" / "raw"

    manifest = acquire("cifar10", raw_dir, mirror=mirror, registry=registry, progress=False)

    assert len(manifest["files"]) == 7
    assert not (tmp_path / "a" / "escaped.txt").exists()
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not absolute.exists()


def test_cifar_archive_with_symlink_member_rejected(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    files = dict(fake.files)
    del files["cifar-10-batches-py/data_batch_1"]
    archive = tar_gz_bytes(files, symlinks={"cifar-10-batches-py/data_batch_1": "/etc/passwd"})
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable, archive)})
    (mirror / "cifar10").mkdir()
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(archive)
    raw_dir = tmp_path / "raw"

    with pytest.raises(DataUnavailableError, match="not a regular file"):
        acquire("cifar10", raw_dir, mirror=mirror, registry=registry, progress=False)
    assert not (raw_dir / "cifar-10-batches-py" / "data_batch_1").exists()
    assert not (raw_dir / "cifar-10-batches-py" / "data_batch_2").exists()


def write_partial_cifar_copy(folder: Path, fake: FakeCifar) -> None:
    """Write an extracted copy with two training batches and a shortened test batch, like the local mirror."""
    batch_folder = folder / "cifar-10-batches-py"
    batch_folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2"):
        (batch_folder / name).write_bytes(fake.files[f"cifar-10-batches-py/{name}"])
    test = fake.batches["test_batch"]
    first = {b"batch_label": b"first image", b"labels": test[b"labels"][:1], b"data": test[b"data"][:1]}
    (batch_folder / "test_batch_first1000").write_bytes(pickle_bytes(first))


def test_cifar_partial_copy_needs_allow_unverified(tmp_path, mirror, unreachable, caplog):
    published = FakeCifar(seed=20)
    local = FakeCifar(seed=21)
    registry = write_registry(tmp_path, {"cifar10": published.registry_entry(unreachable)})
    write_partial_cifar_copy(mirror / "cifar10", local)
    raw_dir = tmp_path / "raw"

    with pytest.raises(DataUnavailableError, match="allow_unverified"):
        acquire("cifar10", raw_dir, mirror=mirror, registry=registry, progress=False)

    with caplog.at_level(logging.WARNING):
        manifest = acquire("cifar10", raw_dir, mirror=mirror, registry=registry, allow_unverified=True, progress=False)
    assert sorted(manifest["files"]) == ["data_batch_1", "data_batch_2", "test_batch_first1000"]
    assert {entry["verification"] for entry in manifest["files"].values()} == {"unverified"}
    assert manifest["verified"] is False
    assert "UNVERIFIED" in caplog.text

    info = prepare_dataset("cifar10", raw_dir / "manifest.json", tmp_path / "canonical")
    assert info["counts"] == {"train": 4, "test": 1}
    assert info["verified"] is False
    assert info["class_names"] is None


def test_cifar_unverified_copy_content_checked(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable)})
    write_partial_cifar_copy(mirror / "cifar10", FakeCifar(seed=21))
    bad = {b"labels": [3, 11], b"data": np.zeros((2, 3072), dtype=np.uint8)}
    (mirror / "cifar10" / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle_bytes(bad))

    with pytest.raises(DataUnavailableError, match=r"0\.\.9"):
        acquire("cifar10", tmp_path / "raw", mirror=mirror, registry=registry, allow_unverified=True, progress=False)


def test_cifar_verified_extracted_copy_in_place(tmp_path, mirror, unreachable):
    fake = FakeCifar()
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable)})
    for path, content in fake.files.items():
        target = mirror / "cifar10" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    manifest = acquire("cifar10", tmp_path / "raw", mirror=mirror, registry=registry, progress=False)

    assert {entry["verification"] for entry in manifest["files"].values()} == {"content-checksum"}
    assert manifest["files"]["test_batch"]["path"] == str((mirror / "cifar10/cifar-10-batches-py/test_batch").resolve())


# SIFT1M


def test_sift_first_copy_pinned_then_verified(tmp_path, mirror, unreachable):
    fake = FakeSift()
    registry = write_registry(tmp_path, {"sift1m": FakeSift.registry_entry(f"{unreachable}/sift.tar.gz")})
    (mirror / "sift1m").mkdir()
    (mirror / "sift1m" / "sift.tar.gz").write_bytes(fake.archive)
    raw_dir = tmp_path / "raw" / "sift1m"

    first = acquire("sift1m", raw_dir, mirror=mirror, registry=registry, progress=False)

    assert {entry["verification"] for entry in first["files"].values()} == {"pinned-on-first-use"}
    pins = json.loads((raw_dir / "checksums.pinned.json").read_text())["files"]
    assert pins["sift.tar.gz"]["sha256"] == hashlib.sha256(fake.archive).hexdigest()
    assert pins["sift/sift_base.fvecs"]["sha256"] == hashlib.sha256(fake.files["sift/sift_base.fvecs"]).hexdigest()

    second = acquire("sift1m", raw_dir, registry=registry, progress=False)
    assert {entry["verification"] for entry in second["files"].values()} == {"pinned-sha256"}
    assert {entry["source"] for entry in second["files"].values()} == {"raw_dir"}

    # A changed extracted file fails its pin; the mirror's archive (matching its pin) restores it.
    base = raw_dir / "sift" / "sift_base.fvecs"
    base.write_bytes(base.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    third = acquire("sift1m", raw_dir, mirror=mirror, registry=registry, progress=False)
    assert third["files"]["base"]["verification"] == "pinned-sha256"
    assert third["files"]["base"]["archive"] == "sift.tar.gz"
    assert base.read_bytes() == fake.files["sift/sift_base.fvecs"]


def test_sift_archive_wrong_rows_not_pinned(tmp_path, mirror, unreachable):
    fake = FakeSift(base_rows=9)
    registry = write_registry(tmp_path, {"sift1m": FakeSift.registry_entry(f"{unreachable}/sift.tar.gz")})
    (mirror / "sift1m").mkdir()
    (mirror / "sift1m" / "sift.tar.gz").write_bytes(fake.archive)
    raw_dir = tmp_path / "raw"

    with pytest.raises(DataUnavailableError, match="sift/sift_base.fvecs is 4644 bytes in the archive, expected 5160"):
        acquire("sift1m", raw_dir, mirror=mirror, registry=registry, progress=False)
    assert not (raw_dir / "checksums.pinned.json").exists()


def test_sift_over_ftp_and_prepare(tmp_path, ftp_server):
    fake = FakeSift()
    url = ftp_server.add_file("local/texmex/corpus/sift.tar.gz", fake.archive)
    registry = write_registry(tmp_path, {"sift1m": FakeSift.registry_entry(url)})
    raw_dir = tmp_path / "raw"

    manifest = acquire("sift1m", raw_dir, registry=registry, progress=False)
    info = prepare_dataset("sift1m", raw_dir / "manifest.json", tmp_path / "canonical")
    dataset = load_canonical(tmp_path / "canonical")

    assert manifest["files"]["learn"]["origin"] == url
    assert manifest["files"]["learn"]["source"] == "registry"
    assert info["parts"] == ["learn", "base", "query"]
    assert info["counts"] == SIFT_ROWS
    assert info["has_labels"] is False
    assert dataset.items.dtype == np.float32
    np.testing.assert_array_equal(dataset.items, np.concatenate([fake.vectors[name] for name in SIFT_ROWS]))
    assert np.all(dataset.labels == -1)
    np.testing.assert_array_equal(dataset.parts, [0] * 6 + [1] * 10 + [2] * 3)
    assert info["extra_files"]["groundtruth"] == str(raw_dir.resolve() / "sift" / "sift_groundtruth.ivecs")


# Digits and manifests


def test_digits_prepare(tmp_path):
    info = prepare_dataset("digits", None, tmp_path / "digits")
    dataset = load_canonical(tmp_path / "digits")

    assert info["parts"] == ["all"]
    assert info["counts"] == {"all": 1797}
    assert dataset.items.shape == (1797, 8, 8)
    assert dataset.items.dtype == np.uint8
    assert dataset.items.max() == 16
    assert dataset.labels.dtype == np.int16
    assert set(np.unique(dataset.labels)) == set(range(10))
    assert np.all(dataset.parts == 0)


def test_prepare_rejects_other_dataset_manifest(tmp_path, mirror, unreachable):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(unreachable)})
    fake.write(mirror / "mnist")
    acquire("mnist", tmp_path / "raw", mirror=mirror, registry=registry, progress=False)

    with pytest.raises(ValueError, match="describes dataset 'mnist', expected 'cifar10'"):
        prepare_dataset("cifar10", tmp_path / "raw" / "manifest.json", tmp_path / "canonical")


def test_prepare_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the acquire step"):
        prepare_dataset("mnist", tmp_path / "manifest.json", tmp_path / "canonical")


def test_shipped_registry_lists_all_datasets():
    registry = load_registry()

    assert set(registry.datasets) == {"cifar10", "mnist", "sift1m"}
    assert registry.dataset("sift1m").pins_checksums
    assert registry.dataset("cifar10").archives["cifar-10-python.tar.gz"].size == 170498071
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        registry.dataset("imagenet")


def test_cifar_url_mirror_with_extracted_files(tmp_path, file_server, unreachable):
    fake = FakeCifar()
    registry = write_registry(tmp_path, {"cifar10": fake.registry_entry(unreachable)})
    for path, content in fake.files.items():
        file_server.add_file(f"cifar10/{path}", content)
    raw_dir = tmp_path / "raw"

    manifest = acquire("cifar10", raw_dir, mirror=file_server.base_url, registry=registry, progress=False)

    assert file_server.paths_requested()[0] == "/cifar10/cifar-10-python.tar.gz"
    entry = manifest["files"]["data_batch_1"]
    assert entry["verification"] == "content-checksum"
    assert entry["origin"] == file_server.url("cifar10/cifar-10-batches-py/data_batch_1")
    assert entry["path"] == str(raw_dir.resolve() / "cifar-10-batches-py" / "data_batch_1")


def test_mnist_registry_urls_download(tmp_path, file_server):
    fake = FakeMnist()
    registry = write_registry(tmp_path, {"mnist": fake.registry_entry(file_server.base_url)})
    fake.write(file_server.root / "mnist")
    raw_dir = tmp_path / "raw"

    manifest = acquire("mnist", raw_dir, registry=registry, progress=False)

    assert {entry["source"] for entry in manifest["files"].values()} == {"registry"}
    assert {entry["verification"] for entry in manifest["files"].values()} == {"archive-checksum"}
    assert (raw_dir / "train-images-idx3-ubyte.gz").read_bytes() == fake.published["train_images"]


def test_sift_extracted_copy_in_raw_dir_pinned(tmp_path, unreachable):
    fake = FakeSift()
    registry = write_registry(tmp_path, {"sift1m": FakeSift.registry_entry(f"{unreachable}/sift.tar.gz")})
    raw_dir = tmp_path / "raw"
    for path, content in fake.files.items():
        (raw_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (raw_dir / path).write_bytes(content)

    manifest = acquire("sift1m", raw_dir, registry=registry, progress=False)

    assert {entry["verification"] for entry in manifest["files"].values()} == {"pinned-on-first-use"}
    pins = json.loads((raw_dir / "checksums.pinned.json").read_text())["files"]
    assert sorted(pins) == sorted(fake.files)
