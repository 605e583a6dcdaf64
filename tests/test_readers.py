import gzip
import os
import pickle

import numpy as np
import pytest

from bdnn.data.readers import (
    read_bvecs,
    read_cifar_batch,
    read_cifar_meta,
    read_fvecs,
    read_idx,
    read_ivecs,
    read_mnist_images,
    read_mnist_labels,
)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def vecs_bytes(rows: np.ndarray, dims: list[int] | None = None) -> bytes:
    """Encode rows in the TEXMEX layout; ``dims`` overrides the dimension written before each row."""
    dims = dims if dims is not None else [rows.shape[1]] * rows.shape[0]
    return b"".join(np.int32(dim).tobytes() + row.tobytes() for dim, row in zip(dims, rows))


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compressed", [True, False])
def test_mnist_images_round_trip(tmp_path, images, compressed):
    content = idx_bytes(images, 2051)
    path = tmp_path / "images"
    path.write_bytes(gzip.compress(content) if compressed else content)

    result = read_mnist_images(path)

    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, images)


def test_mnist_labels_round_trip(tmp_path):
    labels = np.array([3, 0, 9, 1], dtype=np.uint8)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels, 2049)))

    np.testing.assert_array_equal(read_mnist_labels(path), labels)


def test_mnist_labels_out_of_range(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.array([1, 10], dtype=np.uint8), 2049))

    with pytest.raises(ValueError, match=r"0\.\.9"):
        read_mnist_labels(path)


def test_idx_wrong_magic(tmp_path, images):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(images, 2049))

    with pytest.raises(ValueError, match="expected IDX magic number 2051, found 2049") as raised:
        read_mnist_images(path)
    assert str(path) in str(raised.value)


def test_idx_truncated_payload(tmp_path, images):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(images, 2051)[:-10])

    with pytest.raises(ValueError, match="truncated"):
        read_mnist_images(path)


def test_idx_trailing_bytes(tmp_path, images):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(images, 2051) + b"\x00")

    with pytest.raises(ValueError, match="longer than its header"):
        read_mnist_images(path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "images"
    path.write_bytes((2051).to_bytes(4, "big") + (5).to_bytes(4, "big"))

    with pytest.raises(ValueError, match="header needs 16 bytes"):
        read_idx(path, 2051)


def test_idx_truncated_gzip(tmp_path, images):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, 2051))[:-20])

    with pytest.raises(ValueError, match="gzip") as raised:
        read_mnist_images(path)
    assert str(path) in str(raised.value)


def cifar_batch(n: int, labels=None, **extra) -> dict:
    rng = np.random.default_rng(1)
    batch = {
        b"batch_label": b"test batch",
        b"labels": list(labels) if labels is not None else [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
    }
    batch.update(extra)
    return batch


def write_pickle(path, obj) -> None:
    with open(path, "wb") as stream:
        pickle.dump(obj, stream, protocol=2)


def test_cifar_batch_plane_layout(tmp_path):
    batch = cifar_batch(4)
    path = tmp_path / "data_batch_1"
    write_pickle(path, batch)

    images, labels = read_cifar_batch(path)

    assert images.shape == (4, 32, 32, 3)
    assert images.dtype == np.uint8
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, batch[b"labels"])
    data = batch[b"data"]
    row, column = 5, 17
    # Pixel (row, column) of channel c is at c * 1024 + row * 32 + column.
    for channel in range(3):
        assert images[2, row, column, channel] == data[2, channel * 1024 + row * 32 + column]


def test_cifar_batch_wrong_width(tmp_path):
    batch = cifar_batch(2)
    batch[b"data"] = batch[b"data"][:, :3000]
    path = tmp_path / "data_batch_1"
    write_pickle(path, batch)

    with pytest.raises(ValueError, match=r"shape \(n, 3072\)"):
        read_cifar_batch(path)


def test_cifar_batch_label_count_mismatch(tmp_path):
    path = tmp_path / "data_batch_1"
    write_pickle(path, cifar_batch(3, labels=[1, 2]))

    with pytest.raises(ValueError, match="expected 3 labels"):
        read_cifar_batch(path)


def test_cifar_batch_label_out_of_range(tmp_path):
    path = tmp_path / "data_batch_1"
    write_pickle(path, cifar_batch(2, labels=[1, 12]))

    with pytest.raises(ValueError, match=r"0\.\.9"):
        read_cifar_batch(path)


def test_cifar_batch_missing_key(tmp_path):
    batch = cifar_batch(2)
    del batch[b"labels"]
    path = tmp_path / "data_batch_1"
    write_pickle(path, batch)

    with pytest.raises(ValueError, match="labels"):
        read_cifar_batch(path)


def test_cifar_batch_truncated(tmp_path):
    path = tmp_path / "data_batch_1"
    write_pickle(path, cifar_batch(3))
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(ValueError, match="not a readable CIFAR-10 python pickle"):
        read_cifar_batch(path)


def test_cifar_pickle_rejects_foreign_globals(tmp_path):
    path = tmp_path / "data_batch_1"
    write_pickle(path, {b"data": os.getcwd, b"labels": []})

    with pytest.raises(ValueError, match="not allowed"):
        read_cifar_batch(path)


def test_cifar_meta_names(tmp_path):
    path = tmp_path / "batches.meta"
    write_pickle(path, {b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072})

    assert read_cifar_meta(path) == ["airplane", "automobile"]


@pytest.fixture
def vectors():
    return np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)


@pytest.mark.parametrize("mmap", [False, True])
def test_fvecs_round_trip(tmp_path, vectors, mmap):
    path = tmp_path / "x.fvecs"
    path.write_bytes(vecs_bytes(vectors))

    result = read_fvecs(path, mmap=mmap)

    assert result.shape == (6, 4)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, vectors)


def test_fvecs_count_reads_prefix(tmp_path, vectors):
    path = tmp_path / "x.fvecs"
    path.write_bytes(vecs_bytes(vectors))

    np.testing.assert_array_equal(read_fvecs(path, count=2), vectors[:2])
    with pytest.raises(ValueError, match="requested 7 rows but the file has 6"):
        read_fvecs(path, count=7)


def test_fvecs_inconsistent_dimension(tmp_path, vectors):
    # Rows of 4 values, but row 3 claims 5: the size still matches, only the dimension check catches it.
    path = tmp_path / "x.fvecs"
    path.write_bytes(vecs_bytes(vectors, dims=[4, 4, 4, 5, 4, 4]))

    with pytest.raises(ValueError, match="row 3 has dimension 5 but row 0 has 4"):
        read_fvecs(path)


def test_fvecs_size_not_multiple_of_row(tmp_path, vectors):
    path = tmp_path / "x.fvecs"
    path.write_bytes(vecs_bytes(vectors)[:-3])

    with pytest.raises(ValueError, match="not a multiple of the row size 20") as raised:
        read_fvecs(path)
    assert str(path) in str(raised.value)


def test_fvecs_empty_file(tmp_path):
    path = tmp_path / "x.fvecs"
    path.write_bytes(b"")

    with pytest.raises(ValueError, match="empty or truncated"):
        read_fvecs(path)


def test_fvecs_invalid_first_dimension(tmp_path):
    path = tmp_path / "x.fvecs"
    path.write_bytes(np.int32(-1).tobytes() + b"\x00" * 12)

    with pytest.raises(ValueError, match="dimension -1"):
        read_fvecs(path)


def test_ivecs_round_trip(tmp_path):
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = tmp_path / "gt.ivecs"
    path.write_bytes(vecs_bytes(ids))

    result = read_ivecs(path, mmap=True)

    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, ids)


def test_bvecs_round_trip(tmp_path):
    values = np.arange(15, dtype=np.uint8).reshape(3, 5)
    path = tmp_path / "x.bvecs"
    path.write_bytes(vecs_bytes(values))

    result = read_bvecs(path)

    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, values)
