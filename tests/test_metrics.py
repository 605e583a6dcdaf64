import json
import logging

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from bdnn.evaluation.metrics import (
    average_precisions,
    evaluate,
    mean_average_precision,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
)


def codes(*rows):
    return np.array([[int(bit) for bit in row] for row in rows], dtype=np.uint8)


def reference_ranking_flags(query_codes, database_codes, relevant_sets):
    """Relevance flags of each query's stable ranking, by brute force."""
    distances = (query_codes[:, None, :] != database_codes[None, :, :]).sum(axis=2)
    flags = []
    for row, relevant in zip(distances, relevant_sets):
        order = np.argsort(row, kind="stable")
        flags.append(np.isin(order, list(relevant)))
    return distances, flags


def reference_average_precision(flags, form):
    ranks = np.flatnonzero(flags)
    if ranks.size == 0:
        return 0.0
    found = np.arange(1, ranks.size + 1)
    at_hit = found / (ranks + 1)
    if form == "standard":
        return float(at_hit.mean())
    before_hit = np.array([1.0 if r == 0 else (j - 1) / r for j, r in zip(found, ranks)])
    return float(np.sum(before_hit + at_hit) / (2 * ranks.size))


def test_ap_worked_example():
    # Distances 0, 1, 2 put database items 0, 1, 2 at 1-based ranks 1, 2, 3.
    query_codes = codes("0000")
    database_codes = codes("0000", "1000", "1100")
    relevant = np.array([[0, 2]])
    trapezoid = mean_average_precision(query_codes, database_codes, relevant=relevant)
    standard = mean_average_precision(query_codes, database_codes, relevant=relevant, ap="standard")
    assert trapezoid == pytest.approx(19 / 24)
    assert round(trapezoid, 4) == 0.7917
    assert standard == pytest.approx(5 / 6)
    assert round(standard, 4) == 0.8333


def test_ties_keep_database_index_order():
    # Distances [2, 1, 1, 1]: the stable ranking is items 1, 2, 3, 0.
    query_codes = codes("00")
    database_codes = codes("11", "01", "10", "01")
    for item, rank in [(1, 0), (2, 1), (3, 2), (0, 3)]:
        relevant = np.array([[item]])
        standard = mean_average_precision(query_codes, database_codes, relevant=relevant, ap="standard")
        trapezoid = mean_average_precision(query_codes, database_codes, relevant=relevant)
        assert standard == pytest.approx(1 / (rank + 1)), f"item {item}"
        expected_trapezoid = 1.0 if rank == 0 else (1 / (rank + 1)) / 2
        assert trapezoid == pytest.approx(expected_trapezoid), f"item {item}"


def test_long_tie_runs_match_reference():
    # Three bits and 1,000 database codes give long runs of equal distances.
    rng = np.random.default_rng(4)
    query_codes = rng.integers(0, 2, size=(6, 3), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(1000, 3), dtype=np.uint8)
    relevant = np.stack([rng.choice(1000, size=70, replace=False) for _ in range(6)])
    _, flags = reference_ranking_flags(query_codes, database_codes, relevant)
    for form in ("trapezoid", "standard"):
        result = average_precisions(query_codes, database_codes, relevant=relevant, ap=form)
        expected = [reference_average_precision(f, form) for f in flags]
        np.testing.assert_allclose(result, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_random_cases_match_reference(seed):
    rng = np.random.default_rng(seed)
    n_bits = int(rng.integers(1, 70))
    query_codes = rng.integers(0, 2, size=(8, n_bits), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(int(rng.integers(5, 300)), n_bits), dtype=np.uint8)
    n_relevant = int(rng.integers(1, database_codes.shape[0] + 1))
    relevant = np.stack([rng.permutation(database_codes.shape[0])[:n_relevant] for _ in range(8)])
    _, flags = reference_ranking_flags(query_codes, database_codes, relevant)
    for form in ("trapezoid", "standard"):
        result = average_precisions(query_codes, database_codes, relevant=relevant, ap=form)
        expected = [reference_average_precision(f, form) for f in flags]
        np.testing.assert_allclose(result, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_standard_ap_matches_sklearn_without_ties(seed):
    # Database item i differs from the query in its first `distance[i]` bits,
    # so every distance is distinct and the ranking has no ties.
    rng = np.random.default_rng(seed)
    n_bits, n_database = 48, 40
    query = rng.integers(0, 2, size=(1, n_bits), dtype=np.uint8)
    distance = rng.permutation(n_bits + 1)[:n_database]
    database_codes = np.repeat(query, n_database, axis=0)
    for item, d in enumerate(distance):
        database_codes[item, :d] ^= 1
    relevant = rng.choice(n_database, size=int(rng.integers(1, n_database)), replace=False)

    is_relevant = np.isin(np.arange(n_database), relevant)
    expected = average_precision_score(is_relevant, -distance)
    result = mean_average_precision(query, database_codes, relevant=relevant[None, :], ap="standard")
    assert result == pytest.approx(expected, rel=1e-12)


def balanced_labels(rng, n_classes, per_class):
    return rng.permutation(np.repeat(np.arange(n_classes), per_class))


def test_labels_match_relevant_lists():
    rng = np.random.default_rng(5)
    database_labels = balanced_labels(rng, 4, 30)
    query_labels = rng.integers(0, 4, size=9)
    relevant = np.stack([np.flatnonzero(database_labels == label) for label in query_labels])
    query_codes = rng.integers(0, 2, size=(9, 6), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(120, 6), dtype=np.uint8)

    by_labels = evaluate(
        query_codes, database_codes, query_labels=query_labels, database_labels=database_labels, ks=(1, 5, 50)
    )
    by_lists = evaluate(query_codes, database_codes, relevant=relevant, ks=(1, 5, 50))
    assert by_labels == by_lists
    for form in ("trapezoid", "standard"):
        np.testing.assert_array_equal(
            average_precisions(
                query_codes, database_codes, query_labels=query_labels, database_labels=database_labels, ap=form
            ),
            average_precisions(query_codes, database_codes, relevant=relevant, ap=form),
        )


def test_query_without_relevant_scores_zero(caplog):
    query_codes = codes("00", "11")
    database_codes = codes("00", "01", "11")
    query_labels = np.array([1, 7])
    database_labels = np.array([1, 2, 1])
    with caplog.at_level(logging.WARNING, logger="bdnn.evaluation.metrics"):
        result = average_precisions(
            query_codes, database_codes, query_labels=query_labels, database_labels=database_labels
        )
    assert result[0] == pytest.approx(1 / 2 + ((1 / 2 + 2 / 3) / 2) / 2)
    assert result[1] == 0.0
    assert "1 of 2 queries have no relevant database item" in caplog.text

    mean = mean_average_precision(query_codes, database_codes, query_labels=query_labels, database_labels=database_labels)
    assert mean == pytest.approx(result[0] / 2)


def small_case():
    # Distances [0, 2, 1, 1, 0]: the stable ranking is items 0, 4, 2, 3, 1.
    query_codes = codes("00")
    database_codes = codes("00", "11", "01", "10", "00")
    relevant = np.array([[4, 3]])
    return query_codes, database_codes, relevant


def test_precision_at_k_hand_computed():
    query_codes, database_codes, relevant = small_case()
    result = precision_at_k(query_codes, database_codes, relevant=relevant, ks=(1, 2, 3, 4, 5))
    assert result == pytest.approx({1: 0.0, 2: 1 / 2, 3: 1 / 3, 4: 2 / 4, 5: 2 / 5})


def test_precision_at_k_averages_over_queries():
    query_codes = codes("00", "11")
    database_codes = codes("00", "11", "01")
    relevant = np.array([[1], [1]])
    result = precision_at_k(query_codes, database_codes, relevant=relevant, ks=(1, 2))
    # Query 0 ranks items 0, 2, 1 and query 1 ranks items 1, 2, 0.
    assert result == pytest.approx({1: (0 + 1) / 2, 2: (0 + 1 / 2) / 2})


def test_precision_recall_by_radius_single_query():
    query_codes, database_codes, relevant = small_case()
    precision, recall = precision_recall_by_radius(query_codes, database_codes, relevant=relevant)
    np.testing.assert_allclose(precision, [1 / 2, 2 / 4, 2 / 5])
    np.testing.assert_allclose(recall, [1 / 2, 1, 1])


def radius_case():
    # Query 0 has distances [0, 1, 2]; query 1 has [3, 4, 3] and retrieves nothing up to radius 2.
    query_codes = codes("0000", "1110")
    database_codes = codes("0000", "0001", "0011")
    relevant = np.array([[1], [2]])
    return query_codes, database_codes, relevant


def test_pr_by_radius_per_query_mean():
    query_codes, database_codes, relevant = radius_case()
    precision, recall = precision_recall_by_radius(query_codes, database_codes, relevant=relevant)
    assert precision.shape == recall.shape == (5,)
    np.testing.assert_allclose(precision, [0, 1 / 4, 1 / 6, 5 / 12, 1 / 3])
    np.testing.assert_allclose(recall, [0, 1 / 2, 1 / 2, 1, 1])


def test_radius_precision_empty_retrieval_zero():
    query_codes, database_codes, relevant = radius_case()
    assert precision_within_radius(query_codes, database_codes, relevant=relevant) == pytest.approx(1 / 6)
    assert precision_within_radius(query_codes, database_codes, relevant=relevant, radius=0) == 0.0
    assert precision_within_radius(query_codes, database_codes, relevant=relevant, radius=10) == pytest.approx(1 / 3)


def test_evaluate_hand_computed():
    query_codes, database_codes, relevant = radius_case()
    result = evaluate(query_codes, database_codes, relevant=relevant, ks=(1, 3), radius=2)
    assert json.loads(json.dumps(result)) == result

    # Query 0 ranks items 0, 1, 2 and finds item 1 at rank 1; query 1 ranks 0, 2, 1 and finds item 2 at rank 1.
    assert result["map"]["standard"] == pytest.approx(1 / 2)
    assert result["map"]["trapezoid"] == pytest.approx(1 / 4)
    assert result["precision_at_k"] == pytest.approx({"1": 0.0, "3": 1 / 3})
    assert result["radius"] == 2
    assert result["precision_within_radius"] == pytest.approx(1 / 6)
    assert result["pr_by_radius"]["radius"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(result["pr_by_radius"]["precision"], [0, 1 / 4, 1 / 6, 5 / 12, 1 / 3])
    np.testing.assert_allclose(result["pr_by_radius"]["recall"], [0, 1 / 2, 1 / 2, 1, 1])
    assert (result["n_queries"], result["n_database"], result["n_bits"]) == (2, 3, 4)


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_chunked_results_equal_unchunked(chunk_size):
    rng = np.random.default_rng(6)
    query_codes = rng.integers(0, 2, size=(10, 12), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(200, 12), dtype=np.uint8)
    relevant = np.stack([rng.choice(200, size=15, replace=False) for _ in range(10)])
    whole = evaluate(query_codes, database_codes, relevant=relevant, ks=(1, 10, 100), chunk_size=10)
    chunked = evaluate(query_codes, database_codes, relevant=relevant, ks=(1, 10, 100), chunk_size=chunk_size)
    assert chunked == whole


def test_functions_agree_with_evaluate():
    rng = np.random.default_rng(7)
    query_codes = rng.integers(0, 2, size=(5, 10), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(60, 10), dtype=np.uint8)
    relevant = np.stack([rng.choice(60, size=8, replace=False) for _ in range(5)])
    result = evaluate(query_codes, database_codes, relevant=relevant, ks=(5, 20), radius=3)

    arguments = dict(relevant=relevant)
    assert result["map"]["trapezoid"] == mean_average_precision(query_codes, database_codes, **arguments)
    assert result["map"]["standard"] == mean_average_precision(query_codes, database_codes, ap="standard", **arguments)
    at_k = precision_at_k(query_codes, database_codes, ks=(5, 20), **arguments)
    assert result["precision_at_k"] == {str(k): value for k, value in at_k.items()}
    within = precision_within_radius(query_codes, database_codes, radius=3, **arguments)
    assert result["precision_within_radius"] == within


@pytest.fixture
def tiny():
    return codes("01", "10"), codes("00", "01", "11")


def test_missing_relevance_rejected(tiny):
    with pytest.raises(ValueError, match="relevance is missing"):
        mean_average_precision(*tiny)


def test_both_relevance_forms_rejected(tiny):
    with pytest.raises(ValueError, match="not both"):
        mean_average_precision(
            *tiny, relevant=np.array([[0], [1]]), query_labels=np.array([0, 1]), database_labels=np.array([0, 1, 1])
        )


def test_half_of_label_pair_rejected(tiny):
    with pytest.raises(ValueError, match="database_labels is missing"):
        mean_average_precision(*tiny, query_labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="query_labels is missing"):
        mean_average_precision(*tiny, database_labels=np.array([0, 1, 1]))


@pytest.mark.parametrize(
    "relevant, message",
    [
        (np.array([[0], [3]]), r"indices in \[0, 2\], found values from 0 to 3"),
        (np.array([[0], [-1]]), r"found values from -1 to 0"),
        (np.array([[0, 0], [1, 2]]), "relevant row 0 lists database index 0 more than once"),
        (np.array([[0]]), r"shape \(n_queries, K\) with n_queries=2"),
        (np.zeros((2, 0), dtype=np.int64), "K >= 1"),
        (np.array([0, 1]), "2-D integer array"),
        (np.array([[0.0], [1.0]]), "integer dtype"),
    ],
)
def test_invalid_relevant_rejected(tiny, relevant, message):
    with pytest.raises(ValueError, match=message):
        mean_average_precision(*tiny, relevant=relevant)


def test_invalid_labels_rejected(tiny):
    with pytest.raises(ValueError, match="query_labels must have length n_queries=2, got 3"):
        mean_average_precision(*tiny, query_labels=np.array([0, 1, 2]), database_labels=np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="database_labels must have an integer dtype"):
        mean_average_precision(*tiny, query_labels=np.array([0, 1]), database_labels=np.array([0.0, 1.0, 1.0]))


def test_invalid_codes_rejected(tiny):
    query_codes, database_codes = tiny
    relevant = np.array([[0], [1]])
    with pytest.raises(ValueError, match="same number of bits, got 2 and 3"):
        mean_average_precision(query_codes, codes("000", "011", "111"), relevant=relevant)
    with pytest.raises(ValueError, match="query_codes must contain only 0 and 1"):
        mean_average_precision(query_codes * 3, database_codes, relevant=relevant)
    with pytest.raises(ValueError, match="database_codes must have dtype uint8"):
        mean_average_precision(query_codes, database_codes.astype(np.int8), relevant=relevant)
    with pytest.raises(ValueError, match="at least one code"):
        mean_average_precision(query_codes[:0], database_codes, relevant=relevant[:0])


def test_invalid_options_rejected(tiny):
    relevant = np.array([[0], [1]])
    with pytest.raises(ValueError, match="ap must be one of"):
        mean_average_precision(*tiny, relevant=relevant, ap="interpolated")
    with pytest.raises(ValueError, match=r"\[1, n_database=3\], got 4"):
        precision_at_k(*tiny, relevant=relevant, ks=(1, 4))
    with pytest.raises(ValueError, match="got 0"):
        evaluate(*tiny, relevant=relevant, ks=(0,))
    with pytest.raises(ValueError, match="at least one cut-off"):
        precision_at_k(*tiny, relevant=relevant, ks=())
    with pytest.raises(ValueError, match="radius must be a non-negative integer"):
        precision_within_radius(*tiny, relevant=relevant, radius=-1)
