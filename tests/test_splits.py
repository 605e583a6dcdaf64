import numpy as np
import pytest

from bdnn.evaluation.splits import make_split, select_part

PART_NAMES = ["train", "test"]
PARTS = np.array([0] * 8 + [1] * 4, dtype=np.uint8)


def test_select_part_slice():
    indices = select_part(PARTS, PART_NAMES, {"part": "test", "start": 1, "stop": 3})
    assert indices.tolist() == [9, 10]


def test_select_part_unknown_name():
    with pytest.raises(ValueError, match="'validation' does not exist"):
        select_part(PARTS, PART_NAMES, {"part": "validation"})


def test_select_part_stop_too_large():
    with pytest.raises(ValueError, match="exceeds the 4 items"):
        select_part(PARTS, PART_NAMES, {"part": "test", "stop": 5})


def test_split_train_is_database():
    split = make_split(PARTS, PART_NAMES, {"query": {"part": "test"}, "database": {"part": "train"}, "train": "database"}, seed=0)
    assert split["query"].tolist() == [8, 9, 10, 11]
    assert split["database"].tolist() == list(range(8))
    assert split["train"].tolist() == list(range(8))


def test_split_caps_are_seeded_and_sorted():
    experiment = {"query": {"part": "test"}, "database": {"part": "train"}, "train": "database",
                  "max_database": 5, "max_train": 3}
    first = make_split(PARTS, PART_NAMES, experiment, seed=4)
    second = make_split(PARTS, PART_NAMES, experiment, seed=4)
    other = make_split(PARTS, PART_NAMES, experiment, seed=5)
    assert first["database"].size == 5
    assert np.all(np.diff(first["database"]) > 0)
    assert set(first["train"]) <= set(first["database"])
    assert np.array_equal(first["database"], second["database"])
    assert np.array_equal(first["train"], second["train"])
    assert not (np.array_equal(first["database"], other["database"]) and np.array_equal(first["train"], other["train"]))


def test_split_excludes_queries_from_database():
    experiment = {"query": {"part": "train"}, "database": {"part": "train"}, "train": "database",
                  "max_query": 3, "query_excluded_from_database": True}
    split = make_split(PARTS, PART_NAMES, experiment, seed=1)
    assert split["query"].size == 3
    assert split["database"].size == 5
    assert not set(split["query"]) & set(split["database"])


def test_split_empty_set_rejected():
    experiment = {"query": {"part": "test"}, "database": {"part": "test"}, "train": "database",
                  "query_excluded_from_database": True}
    with pytest.raises(ValueError, match="database set of this experiment is empty"):
        make_split(PARTS, PART_NAMES, experiment, seed=0)
