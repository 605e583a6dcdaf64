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
    if feature in ("gist320", "gist512"):
        from bdnn.features.gist import gist

        orientations = (8, 8, 4) if feature == "gist320" else (8, 8, 8, 8)
        return gist(items, orientations=orientations, variant="lmgist", show_progress=True,
                    workers=int(options.get("threads", 1)))
    if feature in ("alexnet_fc7_pca800", "vgg16_fc7"):
        return _cnn_feature(feature, items, parts, part_names, options)
    raise ValueError(f"unknown feature {feature!r}; expected one of {FEATURE_NAMES}")


def _cnn_feature(feature: str, items: np.ndarray, parts: np.ndarray, part_names: Sequence[str],
                 options: Mapping[str, Any]) -> np.ndarray:
    from bdnn.features.cnn import extract_fc7
    from bdnn.features.pca import apply_pca_projection, fit_pca_projection

    name = "alexnet" if feature.startswith("alexnet") else "vgg16"
    fc7 = extract_fc7(items, name=name, weights=options.get("cnn_weights", {}).get(name),
                      batch_size=int(options.get("cnn_batch_size", 64)), device=options.get("cnn_device", "cpu"),
                      show_progress=True)
    if feature == "vgg16_fc7":
        return fc7
    if "train" not in part_names:
        raise ValueError(f"{feature} fits its PCA on the 'train' part, which this dataset lacks (parts: {list(part_names)})")
    train = parts == list(part_names).index("train")
    return apply_pca_projection(fit_pca_projection(fc7[train], 800), fc7)
