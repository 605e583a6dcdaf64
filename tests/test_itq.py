import numpy as np
import pytest

from bdnn.hashing.itq import ITQ


@pytest.fixture
def clustered_data():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=5.0, size=(6, 20))
    return centres[rng.integers(0, 6, size=400)] + rng.normal(size=(400, 20))


def test_itq_loss_never_increases(clustered_data):
    model = ITQ(n_bits=8, n_iter=30).fit(clustered_data)
    losses = np.array(model.loss_history_)
    assert len(losses) == 30
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])


def test_itq_rotation_is_orthogonal(clustered_data):
    model = ITQ(n_bits=12).fit(clustered_data)
    rotation = model.rotation_
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(12), atol=1e-10)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(12), atol=1e-10)


def test_itq_codes_shape_and_dtype(clustered_data):
    codes = ITQ(n_bits=16).fit(clustered_data).encode(clustered_data[:7])
    assert codes.shape == (7, 16)
    assert codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}


def test_itq_same_seed_same_codes(clustered_data):
    first = ITQ(n_bits=8, random_state=5).fit(clustered_data).encode(clustered_data)
    second = ITQ(n_bits=8, random_state=5).fit(clustered_data).encode(clustered_data)
    assert np.array_equal(first, second)


def test_itq_beats_initial_rotation(clustered_data):
    model = ITQ(n_bits=8, n_iter=0).fit(clustered_data)
    projected = (clustered_data - model.mean_) @ model.components_ @ model.rotation_
    initial_loss = np.sum((np.where(projected >= 0, 1.0, -1.0) - projected) ** 2)
    trained = ITQ(n_bits=8, n_iter=50).fit(clustered_data)
    assert trained.loss_history_[-1] < initial_loss


def test_itq_train_query_centring_uses_both_means(clustered_data):
    train, query = clustered_data[:300], clustered_data[300:] + 1.0
    model = ITQ(n_bits=4, center="train+query").fit(train, query=query)
    np.testing.assert_allclose(model.mean_, np.vstack([train, query]).mean(axis=0))


def test_itq_train_query_needs_query(clustered_data):
    with pytest.raises(ValueError, match="query"):
        ITQ(n_bits=4, center="train+query").fit(clustered_data)


def test_itq_rejects_too_many_bits():
    with pytest.raises(ValueError, match="n_bits=5 exceeds"):
        ITQ(n_bits=5).fit(np.ones((10, 4)) + np.arange(40).reshape(10, 4))


def test_itq_rejects_nan(clustered_data):
    data = clustered_data.copy()
    data[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ITQ(n_bits=4).fit(data)


def test_itq_save_load_round_trip(clustered_data, tmp_path):
    model = ITQ(n_bits=8, center="train+query", random_state=2).fit(clustered_data[:300], query=clustered_data[300:])
    model.save(tmp_path / "itq.npz")
    loaded = ITQ.load(tmp_path / "itq.npz")
    assert loaded.center == "train+query"
    assert np.array_equal(loaded.encode(clustered_data), model.encode(clustered_data))
