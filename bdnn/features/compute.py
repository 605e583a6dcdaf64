"""Feature matrices by the names used in the configuration.

Every feature matrix has one row per item of the canonical dataset, in the
same order as ``items.npy``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bdnn.io import require_finite

logger = logging.getLogger(__name__)

FEATURE_NAMES = ("pixels", "sift", "gist320", "gist512", "alexnet_fc7_pca800", "vgg16_fc7")


def compute_feature(feature: str, items: np.ndarray, parts: np.ndarray, part_names: Sequence[str],
                    options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Compute one feature matrix for every item of a dataset.

    Parameters
    ----------
    feature : str
        One of :data:`FEATURE_NAMES`. ``pixels`` flattens images (uint8 kept),
        ``sift`` passes 128-D SIFT vectors through as float32.
    items : ndarray
        All items of the dataset, as in ``items.npy``.
    parts : ndarray of shape (n_items,)
        Part id of every item; PCA projections are fitted on the ``train`` part.
    part_names : sequence of str
        Part names in id order.
    options : mapping, optional
        ``cnn_weights`` (model name to weights file), ``cnn_device`` and
        ``cnn_batch_size`` for the CNN features.

    Returns
    -------
    ndarray of shape (n_items, n_features)

    Raises
    ------
    ValueError
        If the feature name is unknown or does not fit the items.
    """
    options = dict(options or {})
    if feature == "pixels":
        if items.ndim < 2:
            raise ValueError(f"pixels needs images of shape (n, h, w[, 3]), got shape {items.shape}")
        return items.reshape(items.shape[0], -1)
    if feature == "sift":
        if items.ndim != 2 or items.shape[1] != 128:
            raise ValueError(f"sift needs vectors of shape (n, 128), got shape {items.shape}")
        features = items.astype(np.float32, copy=False)
        require_finite(features, "SIFT vectors")
        return features
    raise ValueError(f"unknown feature {feature!r}; expected one of {FEATURE_NAMES}")
