import numpy as np
import pytest

from bdnn.evaluation.ground_truth import knn_ground_truth


def reference_neighbours(queries, database, k):
    """Stable argsort of exact squared distances, computed in int64 for integer data."""
    difference = queries[:, None, :].astype(np.int64) - database[None, :, :].astype(np.int64)
    squared = (difference**2).sum(axis=2)
    return np.argsort(squared, axis=1, kind="stable")[:, :k]


def test_output_shape_and_dtype():
    rng = np.random.default_rng(0)
    result = knn_ground_truth(rng.normal(size=(4, 3)), rng.normal(size=(20, 3)), 5, show_progress=False)
    assert result.shape == (4, 5)
    assert result.dtype == np.int64


def test_kth_boundary_tie_by_index():
    # Squared distances to 0: [9, 1, 4, 4, 25, 4, 1, 81, 0, 4].
    database = np.array([[3], [1], [2], [-2], [5], [2], [-1], [9], [0], [-2]], dtype=np.int16)
    queries = np.zeros((1, 1), dtype=np.int16)
    ranking = [8, 1, 6, 2, 3, 5, 9, 0, 4, 7]
    for k in range(1, 11):
        for database_chunk_size in (1, 2, 3, 4, 10):
            result = knn_ground_truth(
                queries, database, k, database_chunk_size=database_chunk_size, show_progress=False
            )
            assert result[0].tolist() == ranking[:k], f"k={k}, database_chunk_size={database_chunk_size}"


@pytest.mark.parametrize("chunk_size, database_chunk_size", [(1, 1), (2, 7), (5, 64), (None, 1000)])
def test_many_ties_match_stable_argsort(chunk_size, database_chunk_size):
    # Values in {0, 1, 2} in three dimensions leave only a few distinct distances.
    rng = np.random.default_rng(1)
    queries = rng.integers(0, 3, size=(13, 3)).astype(np.uint8)
    database = rng.integers(0, 3, size=(150, 3)).astype(np.float32)
    for k in (1, 10, 37, 150):
        result = knn_ground_truth(
            queries, database, k, chunk_size=chunk_size, database_chunk_size=database_chunk_size, show_progress=False
        )
        np.testing.assert_array_equal(result, reference_neighbours(queries, database, k), err_msg=f"k={k}")


def test_sift_like_integers_are_exact():
    # Duplicated rows give exact ties between large squared distances (up to 128 * 255**2).
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, size=(40, 128))
    database = base[rng.integers(0, 40, size=120)].astype(np.float32)
    queries = rng.integers(0, 256, size=(6, 128)).astype(np.float32)
    result = knn_ground_truth(queries, database, 25, chunk_size=4, database_chunk_size=17, show_progress=False)
    np.testing.assert_array_equal(result, reference_neighbours(queries, database, 25))


def test_database_query_finds_itself():
    rng = np.random.default_rng(3)
    database = rng.integers(0, 256, size=(50, 8)).astype(np.uint8)
    result = knn_ground_truth(database, database, 1, show_progress=False)
    duplicates_first = reference_neighbours(database, database, 1)[:, 0]
    np.testing.assert_array_equal(result[:, 0], duplicates_first)
    assert np.all(result[:, 0] <= np.arange(50))


def test_nan_in_database_rejected():
    database = np.zeros((5, 2))
    database[3, 1] = np.nan
    with pytest.raises(ValueError, match="database contains NaN or infinite values .* first at row 3"):
        knn_ground_truth(np.zeros((1, 2)), database, 1, show_progress=False)


def test_infinity_in_queries_rejected():
    queries = np.zeros((2, 2))
    queries[1, 0] = np.inf
    with pytest.raises(ValueError, match="queries contains NaN or infinite values"):
        knn_ground_truth(queries, np.zeros((3, 2)), 1, show_progress=False)


@pytest.mark.parametrize("k", [0, 4, 2.0, True])
def test_invalid_k_rejected(k):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, n_database=3\]"):
        knn_ground_truth(np.zeros((1, 2)), np.zeros((3, 2)), k, show_progress=False)


def test_invalid_shapes_and_dtypes_rejected():
    with pytest.raises(ValueError, match="same number of features, got 2 and 3"):
        knn_ground_truth(np.zeros((1, 2)), np.zeros((3, 3)), 1, show_progress=False)
    with pytest.raises(ValueError, match="queries must be a 2-D array"):
        knn_ground_truth(np.zeros(2), np.zeros((3, 2)), 1, show_progress=False)
    with pytest.raises(ValueError, match="database must have an integer or floating-point dtype"):
        knn_ground_truth(np.zeros((1, 2)), np.zeros((3, 2), dtype=bool), 1, show_progress=False)


def test_invalid_chunk_sizes_rejected():
    with pytest.raises(ValueError, match="chunk_size must be a positive number of rows, got 0"):
        knn_ground_truth(np.zeros((1, 2)), np.zeros((3, 2)), 1, chunk_size=0, show_progress=False)
    with pytest.raises(ValueError, match="database_chunk_size must be a positive"):
        knn_ground_truth(np.zeros((1, 2)), np.zeros((3, 2)), 1, database_chunk_size=0, show_progress=False)
