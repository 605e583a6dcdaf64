"""Retrieval metrics over a Hamming ranking of the whole database.

Each query ranks every database code by Hamming distance. Codes at the same
distance keep database index order, as a stable sort gives. Relevance comes
either from explicit lists of relevant database indices (K-nearest-neighbour
ground truth from :mod:`bdnn.evaluation.ground_truth`) or from class labels
(relevant = same class).

Two forms of average precision (AP) are offered. With N relevant items and
the j-th relevant item (j = 1..N) at 0-based rank r:

- ``"trapezoid"``: AP = sum_j (p0 + p1) / (2 N) with p1 = j / (r + 1) and
  p0 = (j - 1) / r, or p0 = 1 when r = 0. This trapezoidal rule is the one
  of the Oxford Buildings ``compute_ap`` code, which the BDNN authors (Do,
  Doan and Cheung, ECCV 2016) use in their evaluation code.
- ``"standard"``: AP = sum_j p1 / N, the mean precision at each relevant rank.

Relevant items at 1-based ranks 1 and 3 give 0.7917 and 0.8333.

A query with no relevant item gets AP 0, recall 0 and precision 0 at every
cut-off, and still counts in every mean. One logged warning reports how many
such queries there are. This happens only with labels, when no database item
has the query's class.

Precision and recall by Hamming radius are averaged per query, not pooled.
A query that retrieves nothing within a radius has precision 0 there.

Ranks are found without sorting the database. The rank of a relevant item
i at distance d is the number of codes closer than d plus the number of
codes at distance d with an index below i. The second count comes from
popcounts over a packed bit mask, one mask per distinct distance among the
query's relevant items. Distances are computed for
a block of queries at a time (see
:func:`bdnn.evaluation.hamming.hamming_distance_blocks`), so memory stays
bounded for any number of queries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from bdnn.evaluation.hamming import hamming_distance_blocks, pack_codes
from bdnn.io import require_codes

logger = logging.getLogger(__name__)

AP_FORMS = ("trapezoid", "standard")
DEFAULT_KS = (1, 10, 100, 500, 1000)


@dataclass(frozen=True)
class _Relevance:
    """Relevant database indices of each query, from index lists or from labels."""

    relevant: np.ndarray | None = None
    class_members: tuple[np.ndarray, ...] = ()
    query_class: np.ndarray | None = None

    def sorted_items(self, start: int, stop: int) -> list[np.ndarray]:
        """Return the relevant database indices of queries ``start .. stop - 1``, each sorted."""
        if self.relevant is not None:
            rows = np.sort(self.relevant[start:stop].astype(np.int64, copy=False), axis=1)
            repeated = rows[:, 1:] == rows[:, :-1]
            if np.any(repeated):
                row, column = np.argwhere(repeated)[0]
                raise ValueError(
                    f"relevant row {start + row} lists database index {rows[row, column]} more than once; "
                    f"each row must contain distinct indices"
                )
            return list(rows)

        empty = np.empty(0, dtype=np.int64)
        return [self.class_members[c] if c >= 0 else empty for c in self.query_class[start:stop]]


@dataclass
class _QueryStatistics:
    """Per-query results of one pass over the ranking."""

    n_relevant: np.ndarray
    ap_trapezoid: np.ndarray | None = None
    ap_standard: np.ndarray | None = None
    hits_at_k: np.ndarray | None = None
    retrieved_within: np.ndarray | None = None
    relevant_within: np.ndarray | None = None


def _require_integer_array(array: np.ndarray, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D integer array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must have an integer dtype, got {array.dtype}")
    return array


def _relevance_from_lists(relevant: np.ndarray, n_queries: int, n_database: int) -> _Relevance:
    relevant = _require_integer_array(relevant, "relevant", 2)
    if relevant.shape[0] != n_queries or relevant.shape[1] == 0:
        raise ValueError(
            f"relevant must have shape (n_queries, K) with n_queries={n_queries} and K >= 1, got shape {relevant.shape}"
        )
    low, high = int(relevant.min()), int(relevant.max())
    if low < 0 or high >= n_database:
        raise ValueError(
            f"relevant must contain database indices in [0, {n_database - 1}], found values from {low} to {high}"
        )
    return _Relevance(relevant=relevant)


def _relevance_from_labels(
    query_labels: np.ndarray, database_labels: np.ndarray, n_queries: int, n_database: int
) -> _Relevance:
    query_labels = _require_integer_array(query_labels, "query_labels", 1)
    database_labels = _require_integer_array(database_labels, "database_labels", 1)
    if query_labels.shape[0] != n_queries:
        raise ValueError(f"query_labels must have length n_queries={n_queries}, got {query_labels.shape[0]}")
    if database_labels.shape[0] != n_database:
        raise ValueError(f"database_labels must have length n_database={n_database}, got {database_labels.shape[0]}")

    classes, class_of_item, class_sizes = np.unique(database_labels, return_inverse=True, return_counts=True)
    items_by_class = np.argsort(class_of_item, kind="stable")
    class_members = tuple(np.split(items_by_class, np.cumsum(class_sizes)[:-1]))

    position = np.minimum(np.searchsorted(classes, query_labels), classes.size - 1)
    query_class = np.where(classes[position] == query_labels, position, -1)
    return _Relevance(class_members=class_members, query_class=query_class)


def _prepare(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    relevant: np.ndarray | None,
    query_labels: np.ndarray | None,
    database_labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, _Relevance]:
    """Validate codes and relevance and return packed codes with the relevance."""
    query_codes = require_codes(query_codes, "query_codes")
    database_codes = require_codes(database_codes, "database_codes")
    if query_codes.shape[1] != database_codes.shape[1]:
        raise ValueError(
            f"query_codes and database_codes must have the same number of bits, "
            f"got {query_codes.shape[1]} and {database_codes.shape[1]}"
        )
    if query_codes.shape[0] == 0 or database_codes.shape[0] == 0:
        raise ValueError(
            f"query_codes and database_codes must each contain at least one code, "
            f"got {query_codes.shape[0]} queries and {database_codes.shape[0]} database codes"
        )

    n_queries, n_database = query_codes.shape[0], database_codes.shape[0]
    labels_given = (query_labels is not None, database_labels is not None)
    if relevant is not None and any(labels_given):
        raise ValueError("pass either relevant or query_labels with database_labels, not both")
    if relevant is not None:
        relevance = _relevance_from_lists(relevant, n_queries, n_database)
    elif all(labels_given):
        relevance = _relevance_from_labels(query_labels, database_labels, n_queries, n_database)
    elif any(labels_given):
        missing = "database_labels" if labels_given[0] else "query_labels"
        raise ValueError(f"{missing} is missing: label relevance needs both query_labels and database_labels")
    else:
        raise ValueError("relevance is missing: pass relevant (n_queries, K) indices, or query_labels and database_labels")

    return pack_codes(query_codes), pack_codes(database_codes), relevance


def _count_set_before(flags: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Count the true entries of ``flags`` strictly before each of ``positions``."""
    packed = np.packbits(flags)
    padded = np.zeros(-(-packed.size // 8) * 8, dtype=np.uint8)
    padded[: packed.size] = packed

    # Big-endian words keep the first flag of each word in bit 63.
    words = padded.view(">u8").astype(np.uint64)
    word_counts = np.bitwise_count(words)
    set_before_word = np.cumsum(word_counts, dtype=np.int64) - word_counts

    word_index = positions >> 6
    bit_offset = (positions & 63).astype(np.uint64)
    # Keep the top `bit_offset` bits. Two shifts avoid an undefined shift by 64 when the offset is 0.
    head = (words[word_index] >> (np.uint64(63) - bit_offset)) >> np.uint64(1)
    return set_before_word[word_index] + np.bitwise_count(head)


def _stable_ranks(distances: np.ndarray, items: np.ndarray, item_distances: np.ndarray) -> np.ndarray:
    """Return the sorted 0-based ranks of ``items`` in the stable ranking by ``distances``."""
    ranks = np.empty(items.size, dtype=np.int64)
    for value in np.unique(item_distances):
        in_bucket = item_distances == value
        members = items[in_bucket]
        closer = np.count_nonzero(distances < value)
        same_before = _count_set_before(distances[: members[-1] + 1] == value, members)
        ranks[in_bucket] = closer + same_before
    ranks.sort()
    return ranks


def _average_precision_pair(ranks: np.ndarray) -> tuple[float, float]:
    """Return (trapezoid AP, standard AP) from the sorted 0-based ranks of the relevant items."""
    if ranks.size == 0:
        return 0.0, 0.0
    found = np.arange(1, ranks.size + 1, dtype=np.float64)
    precision_at_hit = found / (ranks + 1)
    precision_before_hit = np.where(ranks > 0, (found - 1) / np.maximum(ranks, 1), 1.0)
    trapezoid = float(np.sum(precision_before_hit + precision_at_hit) / (2 * ranks.size))
    standard = float(np.sum(precision_at_hit) / ranks.size)
    return trapezoid, standard


def _scan(
    query_packed: np.ndarray,
    database_packed: np.ndarray,
    n_bits: int,
    relevance: _Relevance,
    *,
    ranks_needed: bool,
    ks: Sequence[int] = (),
    radius_needed: bool = False,
    chunk_size: int | None,
    show_progress: bool,
) -> _QueryStatistics:
    """Walk the ranking of every query once and collect the requested per-query counts."""
    n_queries = query_packed.shape[0]
    statistics = _QueryStatistics(n_relevant=np.zeros(n_queries, dtype=np.int64))
    if ranks_needed:
        statistics.ap_trapezoid = np.zeros(n_queries)
        statistics.ap_standard = np.zeros(n_queries)
        statistics.hits_at_k = np.zeros((n_queries, len(ks)), dtype=np.int64)
    if radius_needed:
        statistics.retrieved_within = np.zeros((n_queries, n_bits + 1), dtype=np.int64)
        statistics.relevant_within = np.zeros((n_queries, n_bits + 1), dtype=np.int64)
    cutoffs = np.asarray(ks, dtype=np.int64)

    started = time.perf_counter()
    with tqdm(total=n_queries, desc="Hamming ranking", unit="query", disable=not show_progress) as progress:
        for start, block in hamming_distance_blocks(query_packed, database_packed, chunk_size=chunk_size):
            item_lists = relevance.sorted_items(start, start + block.shape[0])
            for query, (distances, items) in enumerate(zip(block, item_lists), start=start):
                item_distances = distances[items]
                statistics.n_relevant[query] = items.size

                if ranks_needed:
                    ranks = _stable_ranks(distances, items, item_distances)
                    statistics.ap_trapezoid[query], statistics.ap_standard[query] = _average_precision_pair(ranks)
                    statistics.hits_at_k[query] = np.searchsorted(ranks, cutoffs, side="left")

                if radius_needed:
                    statistics.retrieved_within[query] = np.cumsum(np.bincount(distances, minlength=n_bits + 1))
                    statistics.relevant_within[query] = np.cumsum(np.bincount(item_distances, minlength=n_bits + 1))
            progress.update(block.shape[0])

    without_relevant = int(np.count_nonzero(statistics.n_relevant == 0))
    if without_relevant:
        logger.warning(
            "%d of %d queries have no relevant database item, so they score 0 and still count in the means",
            without_relevant,
            n_queries,
        )
    logger.debug(
        "Ranked %d database codes of %d bits for %d queries in %.1f s",
        database_packed.shape[0],
        n_bits,
        n_queries,
        time.perf_counter() - started,
    )
    return statistics


def _require_ks(ks: Iterable[int], n_database: int) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must contain at least one cut-off k")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_database:
            raise ValueError(f"each k in ks must be an integer in [1, n_database={n_database}], got {k!r}")
    return tuple(int(k) for k in ks)


def _require_radius(radius: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer Hamming distance, got {radius!r}")
    return int(radius)


def average_precisions(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    ap: str = "trapezoid",
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Compute the average precision of each query over the ranking of the whole database.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bits), dtype uint8
        Query codes with values 0 and 1.
    database_codes : ndarray of shape (n_database, n_bits), dtype uint8
        Database codes with values 0 and 1.
    relevant : ndarray of shape (n_queries, K), integer dtype, optional
        Relevant database indices of each query (K-NN ground truth), without
        repeats within a row. Give either this or both label arrays.
    query_labels : ndarray of shape (n_queries,), integer dtype, optional
        Query classes; a database item is relevant when its class is equal.
    database_labels : ndarray of shape (n_database,), integer dtype, optional
        Database classes, required with ``query_labels``.
    ap : {"trapezoid", "standard"}
        AP form (see the module docstring). ``"trapezoid"`` is the authors'.
    chunk_size : int, optional
        Queries per distance block; by default about 2**24 distances per block.
    show_progress : bool
        Show a progress bar over queries.

    Returns
    -------
    ndarray of shape (n_queries,), dtype float64
        AP of each query as a fraction in [0, 1]. A query without relevant
        items gets 0.

    Raises
    ------
    ValueError
        If the codes are invalid or of different lengths, if neither or both
        forms of relevance are given, if ``relevant`` has a wrong shape,
        out-of-range or repeated indices, or if ``ap`` is unknown.
    """
    if ap not in AP_FORMS:
        raise ValueError(f"ap must be one of {AP_FORMS}, got {ap!r}")
    query_packed, database_packed, relevance = _prepare(
        query_codes, database_codes, relevant, query_labels, database_labels
    )
    statistics = _scan(
        query_packed,
        database_packed,
        np.shape(query_codes)[1],
        relevance,
        ranks_needed=True,
        chunk_size=chunk_size,
        show_progress=show_progress,
    )
    return statistics.ap_trapezoid if ap == "trapezoid" else statistics.ap_standard


def mean_average_precision(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    ap: str = "trapezoid",
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> float:
    """Compute the mean over queries of :func:`average_precisions`.

    Takes the same arguments as :func:`average_precisions`.

    Returns
    -------
    float
        mAP as a fraction in [0, 1]; multiply by 100 for the usual percentage.
        Queries without relevant items count with AP 0.

    Raises
    ------
    ValueError
        As :func:`average_precisions`.
    """
    return float(
        np.mean(
            average_precisions(
                query_codes,
                database_codes,
                relevant=relevant,
                query_labels=query_labels,
                database_labels=database_labels,
                ap=ap,
                chunk_size=chunk_size,
                show_progress=show_progress,
            )
        )
    )


def precision_at_k(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> dict[int, float]:
    """Compute the mean precision among the top k codes of the stable Hamming ranking.

    Parameters
    ----------
    query_codes, database_codes, relevant, query_labels, database_labels
        As in :func:`average_precisions`.
    ks : sequence of int
        Cut-offs, each in [1, n_database].
    chunk_size, show_progress
        As in :func:`average_precisions`.

    Returns
    -------
    dict of int to float
        For each k, the mean over queries of (relevant items among the first
        k ranks) / k.

    Raises
    ------
    ValueError
        As :func:`average_precisions`, or if a k is outside [1, n_database].
    """
    query_packed, database_packed, relevance = _prepare(
        query_codes, database_codes, relevant, query_labels, database_labels
    )
    ks = _require_ks(ks, database_packed.shape[0])
    statistics = _scan(
        query_packed,
        database_packed,
        np.shape(query_codes)[1],
        relevance,
        ranks_needed=True,
        ks=ks,
        chunk_size=chunk_size,
        show_progress=show_progress,
    )
    precisions = statistics.hits_at_k.mean(axis=0) / np.asarray(ks)
    return {k: float(value) for k, value in zip(ks, precisions)}


def precision_recall_by_radius(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute precision and recall of Hamming-ball retrieval for every radius 0..n_bits.

    A query retrieves the database codes within Hamming distance r. Both
    curves are averaged per query (not pooled over queries). A query that
    retrieves nothing at radius r has precision 0 there, and a query without
    relevant items has recall 0.

    Parameters
    ----------
    query_codes, database_codes, relevant, query_labels, database_labels
        As in :func:`average_precisions`.
    chunk_size, show_progress
        As in :func:`average_precisions`.

    Returns
    -------
    precision : ndarray of shape (n_bits + 1,), dtype float64
        Mean precision at radius 0, 1, ..., n_bits.
    recall : ndarray of shape (n_bits + 1,), dtype float64
        Mean recall at radius 0, 1, ..., n_bits.

    Raises
    ------
    ValueError
        As :func:`average_precisions`.
    """
    query_packed, database_packed, relevance = _prepare(
        query_codes, database_codes, relevant, query_labels, database_labels
    )
    statistics = _scan(
        query_packed,
        database_packed,
        np.shape(query_codes)[1],
        relevance,
        ranks_needed=False,
        radius_needed=True,
        chunk_size=chunk_size,
        show_progress=show_progress,
    )
    return _precision_recall_means(statistics)


def _precision_recall_means(statistics: _QueryStatistics) -> tuple[np.ndarray, np.ndarray]:
    """Average per-query precision and recall by radius, with 0 where a denominator is 0."""
    hits = statistics.relevant_within
    retrieved = statistics.retrieved_within
    n_relevant = statistics.n_relevant[:, None]
    precision = np.divide(hits, retrieved, out=np.zeros(hits.shape), where=retrieved > 0)
    recall = np.divide(hits, n_relevant, out=np.zeros(hits.shape), where=n_relevant > 0)
    return precision.mean(axis=0), recall.mean(axis=0)


def precision_within_radius(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    radius: int = 2,
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> float:
    """Compute the mean precision of the codes within Hamming distance ``radius``.

    Parameters
    ----------
    query_codes, database_codes, relevant, query_labels, database_labels
        As in :func:`average_precisions`.
    radius : int
        Hamming radius, at least 0. A radius of n_bits or more retrieves the
        whole database.
    chunk_size, show_progress
        As in :func:`average_precisions`.

    Returns
    -------
    float
        Mean over all queries of the precision within the radius. A query
        that retrieves nothing scores 0 and still counts.

    Raises
    ------
    ValueError
        As :func:`average_precisions`, or if ``radius`` is negative.
    """
    radius = _require_radius(radius)
    precision, _ = precision_recall_by_radius(
        query_codes,
        database_codes,
        relevant=relevant,
        query_labels=query_labels,
        database_labels=database_labels,
        chunk_size=chunk_size,
        show_progress=show_progress,
    )
    return float(precision[min(radius, precision.size - 1)])


def evaluate(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    *,
    relevant: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
    database_labels: np.ndarray | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    radius: int = 2,
    chunk_size: int | None = None,
    show_progress: bool = False,
) -> dict:
    """Compute every retrieval metric of this module in one pass over the ranking.

    Parameters
    ----------
    query_codes, database_codes, relevant, query_labels, database_labels
        As in :func:`average_precisions`.
    ks : sequence of int
        Cut-offs for precision at k, each in [1, n_database].
    radius : int
        Hamming radius for ``precision_within_radius``.
    chunk_size, show_progress
        As in :func:`average_precisions`.

    Returns
    -------
    dict
        JSON-serialisable results. Metric values are fractions in [0, 1].

        - ``map``: dict from AP form (``"trapezoid"``, ``"standard"``) to mAP.
        - ``precision_at_k``: dict from ``str(k)`` to mean precision at k.
        - ``radius`` (int) and ``precision_within_radius`` (float).
        - ``pr_by_radius``: dict of lists ``radius`` (0..n_bits),
          ``precision`` and ``recall``, averaged per query.
        - ``n_queries``, ``n_database``, ``n_bits``: sizes (int).

    Raises
    ------
    ValueError
        As :func:`precision_at_k` and :func:`precision_within_radius`.
    """
    query_packed, database_packed, relevance = _prepare(
        query_codes, database_codes, relevant, query_labels, database_labels
    )
    ks = _require_ks(ks, database_packed.shape[0])
    radius = _require_radius(radius)
    n_bits = np.shape(query_codes)[1]

    started = time.perf_counter()
    statistics = _scan(
        query_packed,
        database_packed,
        n_bits,
        relevance,
        ranks_needed=True,
        ks=ks,
        radius_needed=True,
        chunk_size=chunk_size,
        show_progress=show_progress,
    )
    precision, recall = _precision_recall_means(statistics)
    precisions_at_k = statistics.hits_at_k.mean(axis=0) / np.asarray(ks)
    logger.info(
        "Evaluated %d queries against %d codes of %d bits in %.1f s",
        query_packed.shape[0],
        database_packed.shape[0],
        n_bits,
        time.perf_counter() - started,
    )

    return {
        "map": {
            "trapezoid": float(statistics.ap_trapezoid.mean()),
            "standard": float(statistics.ap_standard.mean()),
        },
        "precision_at_k": {str(k): float(value) for k, value in zip(ks, precisions_at_k)},
        "radius": radius,
        "precision_within_radius": float(precision[min(radius, n_bits)]),
        "pr_by_radius": {
            "radius": list(range(n_bits + 1)),
            "precision": precision.tolist(),
            "recall": recall.tolist(),
        },
        "n_queries": int(query_packed.shape[0]),
        "n_database": int(database_packed.shape[0]),
        "n_bits": int(n_bits),
    }
