"""Construction, training and persistence of hashing methods by name.

The pipeline refers to methods by the names used in the configuration
(``itq``, ``uh_bdnn``); this module maps them to estimators.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from bdnn.hashing.itq import ITQ

logger = logging.getLogger(__name__)

METHOD_NAMES = ("itq", "uh_bdnn")


class HashingModel(Protocol):
    """Interface the pipeline requires of a trained hashing method."""

    def encode(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, path: str | os.PathLike) -> None: ...


def build_method(name: str, n_bits: int, params: Mapping[str, Any], random_state: int) -> Any:
    """Create an unfitted estimator for a method name from the configuration.

    Parameters
    ----------
    name : {"itq", "uh_bdnn"}
        Method name.
    n_bits : int
        Code length.
    params : mapping
        The method's settings from the configuration (``methods.<name>``).
        For ``uh_bdnn``, ``hidden`` maps code lengths to hidden layer sizes
        and overrides the authors' table.
    random_state : int
        Seed of every random step of the method.

    Returns
    -------
    object
        An estimator with ``fit`` and ``encode``.

    Raises
    ------
    ValueError
        If the method name is unknown.
    """
    params = dict(params)
    if name == "itq":
        return ITQ(n_bits, random_state=random_state, **params)
    if name == "uh_bdnn":
        from bdnn.hashing.uh_bdnn import UHBDNN

        hidden_table = params.pop("hidden", None) or {}
        hidden = hidden_table.get(n_bits, hidden_table.get(str(n_bits)))
        if "lambdas" in params:
            params["lambdas"] = tuple(params["lambdas"])
        return UHBDNN(n_bits, hidden=tuple(hidden) if hidden is not None else None, random_state=random_state, **params)
    raise ValueError(f"unknown hashing method {name!r}; expected one of {METHOD_NAMES}")


def fit_method(model: Any, train: np.ndarray, query: np.ndarray) -> Any:
    """Fit ``model`` on ``train``; ITQ in ``train+query`` centring mode also receives ``query``."""
    if isinstance(model, ITQ) and model.center == "train+query":
        return model.fit(train, query=query)
    return model.fit(train)
