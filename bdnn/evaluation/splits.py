"""Training, database and query index sets of an experiment.

An experiment selects its items from the parts of a canonical dataset (for
example MNIST's ``train`` and ``test`` parts). Each selection may be a slice
of a part in canonical order and may be capped to a random subset drawn with
the experiment's seed. Chosen indices are kept in ascending canonical order,
so that Hamming-ranking ties, which keep database order, are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def select_part(parts: np.ndarray, part_names: Sequence[str], selection: Mapping[str, Any]) -> np.ndarray:
    """Return the canonical indices of one part, optionally sliced.

    Parameters
    ----------
    parts : ndarray of shape (n_items,)
        Part id of every item of the dataset.
    part_names : sequence of str
        Part names in id order, as stored in the dataset's ``info.json``.
    selection : mapping
        ``{"part": name, "start": int or None, "stop": int or None}``; the
        slice ``[start, stop)`` counts positions within the part.

    Returns
    -------
    ndarray of int64
        Ascending item indices.

    Raises
    ------
    ValueError
        If the part does not exist or the slice exceeds the part.
    """
    name = selection["part"]
    if name not in part_names:
        raise ValueError(f"dataset part {name!r} does not exist; available parts: {list(part_names)}")
    members = np.flatnonzero(parts == part_names.index(name)).astype(np.int64)
    start, stop = selection.get("start"), selection.get("stop")
    if stop is not None and stop > members.size:
        raise ValueError(f"slice stop={stop} exceeds the {members.size} items of part {name!r}")
    if start is not None and stop is not None and start >= stop:
        raise ValueError(f"empty slice start={start}, stop={stop} of part {name!r}")
    return members[start:stop]


def cap_indices(indices: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``cap`` of ``indices``, drawn with ``rng``, in ascending order."""
    if cap is None or cap >= indices.size:
        return indices
    chosen = rng.permutation(indices.size)[:cap]
    return np.sort(indices[chosen])


def make_split(parts: np.ndarray, part_names: Sequence[str], experiment: Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Build the training, database and query indices of one experiment.

    Parameters
    ----------
    parts : ndarray of shape (n_items,)
        Part id of every item.
    part_names : sequence of str
        Part names in id order.
    experiment : mapping
        The experiment's configuration: ``query``, ``database`` and ``train``
        selections (``train`` may be the string ``"database"``), the optional
        caps ``max_query``, ``max_database`` and ``max_train``, and
        ``query_excluded_from_database``.
    seed : int
        Seed of the random caps. Queries are drawn first, then the database,
        then the training set, each from its own child generator.

    Returns
    -------
    dict
        ``train``, ``database`` and ``query`` index arrays (int64, ascending)
        and ``seed``.

    Raises
    ------
    ValueError
        If a selection is invalid or a set ends up empty.
    """
    query_rng, database_rng, train_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

    query = cap_indices(select_part(parts, part_names, experiment["query"]), experiment.get("max_query"), query_rng)
    database = select_part(parts, part_names, experiment["database"])
    if experiment.get("query_excluded_from_database", False):
        database = np.setdiff1d(database, query, assume_unique=True)
    database = cap_indices(database, experiment.get("max_database"), database_rng)

    if experiment["train"] == "database":
        train = cap_indices(database, experiment.get("max_train"), train_rng)
    else:
        train = cap_indices(select_part(parts, part_names, experiment["train"]), experiment.get("max_train"), train_rng)

    for name, indices in (("query", query), ("database", database), ("train", train)):
        if indices.size == 0:
            raise ValueError(f"the {name} set of this experiment is empty; check its selection and caps")
    return {"train": train, "database": database, "query": query, "seed": np.int64(seed)}
