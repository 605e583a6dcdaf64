"""Iterative quantisation (ITQ) of Gong and Lazebnik, CVPR 2011.

PCA projects centred data onto its top ``n_bits`` principal directions, then
an orthogonal rotation is learned that minimises the quantisation loss
``||B - V R||_F^2`` by alternating ``B = sign(V R)`` with the orthogonal
Procrustes solution for ``R``.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import scipy.linalg

from bdnn.io import load_npz, require_feature_matrix, save_npz

logger = logging.getLogger(__name__)

CENTER_MODES = ("train", "train+query")


def _signed_bits(projection: np.ndarray) -> np.ndarray:
    """Map real values to -1/+1 with +1 where the value is >= 0 (bit 1 where >= 0)."""
    return np.where(projection >= 0, 1.0, -1.0)


def _float_features(X: np.ndarray, name: str) -> np.ndarray:
    return require_feature_matrix(X, name).astype(np.float64, copy=False)


class ITQ:
    """Iterative quantisation hashing.

    Parameters
    ----------
    n_bits : int
        Code length L. Must not exceed the number of features.
    n_iter : int
        Number of alternating (B, R) iterations; the authors use 50.
    center : {"train", "train+query"}
        ``"train"`` centres with the training mean (the default).
        ``"train+query"`` centres with the mean of training and query data
        together, as the authors' ITQ baseline does; ``fit`` then needs ``query``.
    random_state : int
        Seed of the random orthogonal initial rotation.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Mean subtracted before projection.
    components_ : ndarray of shape (n_features, n_bits)
        Top principal directions of the centred training data, as columns.
    rotation_ : ndarray of shape (n_bits, n_bits)
        Learned orthogonal rotation.
    loss_history_ : list of float
        Quantisation loss ``||B - V R||_F^2`` after each iteration's rotation update.
    """

    def __init__(self, n_bits: int, n_iter: int = 50, center: str = "train", random_state: int = 0) -> None:
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.center = center
        self.random_state = random_state

    def fit(self, X: np.ndarray, query: np.ndarray | None = None) -> "ITQ":
        """Learn the projection and rotation from training data.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training data.
        query : ndarray of shape (n_queries, n_features), optional
            Query data, used only for the mean when ``center="train+query"``.

        Returns
        -------
        ITQ
            The fitted estimator.

        Raises
        ------
        ValueError
            On a bad setting, a shape mismatch or non-finite input.
        """
        if not isinstance(self.n_bits, (int, np.integer)) or self.n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {self.n_bits!r}")
        if self.center not in CENTER_MODES:
            raise ValueError(f"center must be one of {CENTER_MODES}, got {self.center!r}")
        X = _float_features(X, "X")
        n_samples, n_features = X.shape
        if self.n_bits > n_features:
            raise ValueError(f"n_bits={self.n_bits} exceeds the number of features ({n_features})")
        if n_samples < 2:
            raise ValueError(f"ITQ needs at least 2 training samples, got {n_samples}")

        if self.center == "train+query":
            if query is None:
                raise ValueError('center="train+query" needs the query data: call fit(X, query=Q)')
            query = _float_features(query, "query")
            if query.shape[1] != n_features:
                raise ValueError(f"query has {query.shape[1]} features, X has {n_features}")
            self.mean_ = (X.sum(axis=0) + query.sum(axis=0)) / (n_samples + query.shape[0])
        else:
            self.mean_ = X.mean(axis=0)

        centred = X - self.mean_
        covariance = centred.T @ centred / n_samples
        # Only the top n_bits eigenpairs are computed; eigh returns them in ascending order.
        _, eigenvectors = scipy.linalg.eigh(covariance, subset_by_index=[n_features - self.n_bits, n_features - 1])
        components = np.ascontiguousarray(eigenvectors[:, ::-1])
        # Fix each eigenvector's sign (largest entry positive) so codes do not depend on LAPACK's choice.
        pivots = np.argmax(np.abs(components), axis=0)
        components *= np.sign(components[pivots, np.arange(self.n_bits)])
        self.components_ = components
        projected = centred @ components

        rng = np.random.default_rng(self.random_state)
        rotation, _, _ = np.linalg.svd(rng.standard_normal((self.n_bits, self.n_bits)))
        self.loss_history_: list[float] = []
        for _ in range(self.n_iter):
            codes = _signed_bits(projected @ rotation)
            left, _, right_t = np.linalg.svd(codes.T @ projected)
            # Procrustes: R = W U^T for B^T V = U S W^T.
            rotation = right_t.T @ left.T
            loss = float(np.sum((_signed_bits(projected @ rotation) - projected @ rotation) ** 2))
            self.loss_history_.append(loss)
        self.rotation_ = rotation
        logger.debug("ITQ %d bits: quantisation loss %.6g after %d iterations", self.n_bits,
                     self.loss_history_[-1] if self.loss_history_ else float("nan"), self.n_iter)
        return self

    def project(self, X: np.ndarray) -> np.ndarray:
        """Return the rotated projection ``(X - mean) W R`` of shape (n, n_bits)."""
        if not hasattr(self, "rotation_"):
            raise RuntimeError("ITQ is not fitted: call fit(X) first")
        X = _float_features(X, "X")
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted on {self.mean_.shape[0]}")
        return (X - self.mean_) @ self.components_ @ self.rotation_

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Return binary codes of shape (n, n_bits), dtype uint8, bit 1 where the projection is >= 0."""
        return (self.project(X) >= 0).astype(np.uint8)

    def save(self, path: str | os.PathLike) -> None:
        """Write the settings and learned arrays to a plain ``.npz`` file, atomically."""
        if not hasattr(self, "rotation_"):
            raise RuntimeError("ITQ is not fitted: call fit(X) before save()")
        save_npz(path, n_bits=self.n_bits, n_iter=self.n_iter, center=self.center, random_state=self.random_state,
                 mean=self.mean_, components=self.components_, rotation=self.rotation_,
                 loss_history=np.asarray(self.loss_history_))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ITQ":
        """Read a model written by :meth:`save`."""
        arrays = load_npz(path)
        model = cls(int(arrays["n_bits"]), n_iter=int(arrays["n_iter"]), center=str(arrays["center"]),
                    random_state=int(arrays["random_state"]))
        model.mean_ = arrays["mean"]
        model.components_ = arrays["components"]
        model.rotation_ = arrays["rotation"]
        model.loss_history_ = arrays["loss_history"].tolist()
        return model
