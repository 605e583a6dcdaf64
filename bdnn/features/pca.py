"""PCA projection of features, fitted on training data only (AlexNet-fc7-PCA800)."""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.decomposition import PCA

from bdnn.io import require_finite

logger = logging.getLogger(__name__)


def _validate_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {features.shape}")
    if not np.issubdtype(features.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {features.dtype}")
    require_finite(features, name)
    return features


def fit_pca_projection(train_features: np.ndarray, n_components: int = 800) -> PCA:
    """Fit a PCA projection on training features.

    The fit runs in float64 with scikit-learn's ``"covariance_eigh"`` solver:
    an eigendecomposition of the ``n_features x n_features`` covariance, which
    is exact, uses no randomness and suits ``n_samples >> n_features``
    (for example 50,000 x 4096 fc7 features). scikit-learn fixes the sign of
    each component, so repeated fits give the same projection.

    Parameters
    ----------
    train_features : ndarray of shape (n_samples, n_features)
        Training features only. Query and database features must not be
        used here.
    n_components : int
        Output dimension, at most ``min(n_samples, n_features)``.

    Returns
    -------
    sklearn.decomposition.PCA
        Fitted model: ``mean_`` of shape (n_features,) and ``components_`` of
        shape (n_components, n_features). Apply it with
        ``apply_pca_projection``.

    Raises
    ------
    ValueError
        If the features are not a finite 2-D numeric array or
        ``n_components`` is out of range.
    """
    train_features = _validate_features(train_features, "train_features")
    n_samples, n_features = train_features.shape
    limit = min(n_samples, n_features)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or not 1 <= n_components <= limit:
        raise ValueError(
            f"n_components must be an integer from 1 to min(n_samples, n_features) = {limit}, got {n_components!r}"
        )

    started = time.perf_counter()
    pca = PCA(n_components=int(n_components), svd_solver="covariance_eigh")
    pca.fit(train_features.astype(np.float64))
    logger.info(
        "PCA fitted: %d x %d features -> %d components (%.1f%% of the variance) in %.1f s",
        n_samples, n_features, n_components, 100 * pca.explained_variance_ratio_.sum(), time.perf_counter() - started,
    )
    return pca


def apply_pca_projection(pca: PCA, features: np.ndarray) -> np.ndarray:
    """Project features with a PCA fitted by ``fit_pca_projection``.

    Parameters
    ----------
    pca : sklearn.decomposition.PCA
        Fitted model.
    features : ndarray of shape (n_samples, n_features)
        Features with the same ``n_features`` as the training features.

    Returns
    -------
    ndarray of shape (n_samples, n_components), dtype float32
        ``(features - pca.mean_) @ pca.components_.T``.

    Raises
    ------
    ValueError
        If the features are not a finite 2-D array with ``n_features`` columns.
    """
    features = _validate_features(features, "features")
    if features.shape[1] != pca.n_features_in_:
        raise ValueError(
            f"features must have {pca.n_features_in_} columns, as the PCA training features had, "
            f"got {features.shape[1]}"
        )
    return pca.transform(features.astype(np.float64)).astype(np.float32)
