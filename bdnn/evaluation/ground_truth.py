"""Exact Euclidean K-nearest-neighbour ground truth for retrieval evaluation.

The unsupervised protocol counts as relevant the K database items nearest to
each query in the original feature space. Supervised (label) relevance needs
no precomputation: pass the class labels to the functions of
:mod:`bdnn.evaluation.metrics` as ``query_labels`` and ``database_labels``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from bdnn.io import require_feature_matrix

logger = logging.getLogger(__name__)

# Default size of one block of squared distances (query rows x database size), in float64 values.
DISTANCE_BLOCK_ELEMENTS = 2**25

# Default size of one database chunk converted to float64 for a matrix product, in values (64 MiB).
DATABASE_CHUNK_ELEMENTS = 2**23


def _squared_norms(array: np.ndarray, name: str, chunk_rows: int) -> np.ndarray:
    """Return the float64 squared norm of each row, reading ``chunk_rows`` rows at a time.

    A row with NaN or infinity gets a non-finite norm, so checking the norms
    checks the data without a full-size boolean mask.
    """
    norms = np.empty(array.shape[0], dtype=np.float64)
    for start in range(0, array.shape[0], chunk_rows):
        rows = array[start : start + chunk_rows].astype(np.float64)
        norms[start : start + rows.shape[0]] = np.einsum("ij,ij->i", rows, rows)

    bad = np.flatnonzero(~np.isfinite(norms))
    if bad.size:
        raise ValueError(
            f"{name} contains NaN or infinite values (or values too large to square) in {bad.size} rows, "
            f"first at row {bad[0]}; clean the features before computing ground truth"
        )
    return norms


def _nearest_in_row(squared_distances: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the k smallest values, ties broken by the smaller index."""
    kth_value = np.partition(squared_distances, k - 1)[k - 1]
    candidates = np.flatnonzero(squared_distances <= kth_value)
    order = np.argsort(squared_distances[candidates], kind="stable")
    return candidates[order[:k]]


def knn_ground_truth(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    *,
    chunk_size: int | None = None,
    database_chunk_size: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Find the k Euclidean nearest database items of each query, exactly.

    Squared distances are computed in float64 as ||q||^2 - 2 q.x + ||x||^2
    and ties are broken by the smaller database index, so the result equals
    a stable argsort of each query's distances cut to k columns.

    Memory is bounded by the block sizes, not by the number of queries. The
    main cost is one block of ``chunk_size`` x n_database float64 squared
    distances (about 256 MiB by default). The rest is one database chunk of
    ``database_chunk_size`` x n_features float64 values (about 64 MiB by
    default), its product with the query block, one row copy for the
    selection and n_database float64 norms. The inputs are never converted
    to float64 as a whole.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_features), integer or float dtype
        Query features.
    database : ndarray of shape (n_database, n_features), integer or float dtype
        Database features.
    k : int
        Number of neighbours, in [1, n_database].
    chunk_size : int, optional
        Queries per block. By default the block contains about 2**25 distances
        (256 MiB), and at least one query.
    database_chunk_size : int, optional
        Database rows per matrix product. By default a chunk contains
        about 2**23 float64 values (64 MiB).
    show_progress : bool
        Show a progress bar over queries.

    Returns
    -------
    ndarray of shape (n_queries, k), dtype int64
        Database indices of the neighbours of each query, nearest first.

    Raises
    ------
    ValueError
        If an input is not a 2-D numeric array, the feature counts differ,
        an input contains NaN or infinity, ``k`` is outside [1, n_database]
        or a chunk size is not positive.
    """
    queries = require_feature_matrix(queries, "queries", finite=False)
    database = require_feature_matrix(database, "database", finite=False)
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries and database must have the same number of features, got {queries.shape[1]} and {database.shape[1]}"
        )
    n_queries, n_database = queries.shape[0], database.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_database:
        raise ValueError(f"k must be an integer in [1, n_database={n_database}], got {k!r}")
    if chunk_size is None:
        chunk_size = max(1, DISTANCE_BLOCK_ELEMENTS // n_database)
    if database_chunk_size is None:
        database_chunk_size = max(1, DATABASE_CHUNK_ELEMENTS // max(database.shape[1], 1))
    for name, value in (("chunk_size", chunk_size), ("database_chunk_size", database_chunk_size)):
        if value < 1:
            raise ValueError(f"{name} must be a positive number of rows, got {value}")

    started = time.perf_counter()
    logger.info(
        "Computing %d nearest neighbours of %d queries among %d items of dimension %d",
        k,
        n_queries,
        n_database,
        queries.shape[1],
    )
    database_norms = _squared_norms(database, "database", database_chunk_size)
    query_norms = _squared_norms(queries, "queries", chunk_size)

    # For integer-valued features every product, partial sum and norm below
    # is an integer of at most n_features * max|value|**2, which is 8.3e6 for
    # SIFT (128 values in 0..255) and 5.1e7 for MNIST pixels, far below 2**53.
    # float64 represents all of them exactly whatever the summation order or
    # use of FMA inside BLAS, so squared distances are exact and equal
    # distances are exact ties.
    # NOTE: for real-valued features (GIST, CNN) the expansion rounds, and
    # near-ties may order differently than a direct sum of squared differences.
    neighbours = np.empty((n_queries, k), dtype=np.int64)
    # One buffer reused for every query block, so two blocks never coexist.
    block_buffer = np.empty((min(chunk_size, n_queries), n_database), dtype=np.float64)
    with tqdm(total=n_queries, desc="K-NN ground truth", unit="query", disable=not show_progress) as progress:
        for query_start in range(0, n_queries, chunk_size):
            query_block = queries[query_start : query_start + chunk_size].astype(np.float64)
            squared_distances = block_buffer[: query_block.shape[0]]

            for database_start in range(0, n_database, database_chunk_size):
                database_stop = min(database_start + database_chunk_size, n_database)
                database_block = database[database_start:database_stop].astype(np.float64)
                squared_distances[:, database_start:database_stop] = query_block @ database_block.T

            squared_distances *= -2.0
            squared_distances += query_norms[query_start : query_start + query_block.shape[0], None]
            squared_distances += database_norms[None, :]

            for row, distances in enumerate(squared_distances):
                neighbours[query_start + row] = _nearest_in_row(distances, k)
            progress.update(query_block.shape[0])

    logger.info("Computed K-NN ground truth in %.1f s", time.perf_counter() - started)
    return neighbours
