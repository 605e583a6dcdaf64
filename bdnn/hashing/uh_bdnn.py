"""Unsupervised hashing with a binary deep neural network (UH-BDNN).

Do, Doan and Cheung, "Learning to Hash with Binary Deep Neural Network",
ECCV 2016. With samples as rows (X of shape (m, D), code layer output H and
auxiliary codes B in {-1, +1} of shape (m, L)) the objective is

    J = 1/(2m) ||X - B W4^T - 1 c4^T||^2                  (reconstruction)
      + lambda1/2 (||W1||^2 + ||W2||^2 + ||W3||^2 + ||W4||^2)  (weight_decay)
      + lambda2/(2m) ||H - B||^2                          (binary)
      + lambda3/2 ||H^T H / m - I||^2                     (independence)
      + lambda4/(2m) ||H^T 1||^2                          (balance)

where the encoder D -> n1 (sigmoid) -> n2 (sigmoid) -> L (identity) computes
H and the decoder (W4 of shape (D, L), c4) reconstructs X from B, not from H.
Biases are not regularised.

The decoder appears only in the reconstruction term and the weight decay, so
for fixed B it is a ridge regression with an unregularised bias. This module
solves it in closed form (``ridge_decoder``) instead of inside L-BFGS: the
result is the exact minimiser over (W4, c4) that joint L-BFGS converges to,
and the encoder's L-BFGS problem does not depend on the decoder at all. The
authors' starting point for the decoder (the D x L identity) is therefore
not needed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from bdnn.evaluation.ground_truth import knn_ground_truth
from bdnn.hashing.itq import ITQ
from bdnn.hashing.network import (
    IDENTITY,
    SIGMOID,
    Layer,
    backward,
    cross_product,
    eigenvector_layers,
    encode_bits,
    forward,
)
from bdnn.hashing.training import (
    BALANCE_TERM,
    BINARY_TERM,
    INDEPENDENCE_TERM,
    WEIGHT_DECAY_TERM,
    RetrievalValidation,
    code_layer_penalties,
    train_binary_encoder,
    weight_decay,
)
from bdnn.io import load_npz, require_feature_matrix, save_npz

logger = logging.getLogger(__name__)

RECONSTRUCTION_TERM = "reconstruction"
UH_TERMS = (RECONSTRUCTION_TERM, WEIGHT_DECAY_TERM, BINARY_TERM, INDEPENDENCE_TERM, BALANCE_TERM)

# Hidden layer sizes (n1, n2) by code length, from the authors' UH-BDNN code.
DEFAULT_HIDDEN = {8: (90, 20), 16: (90, 30), 24: (100, 40), 32: (120, 50)}

DTYPES = ("float32", "float64")

# Rows scaled or encoded at a time, which bounds the memory of float64 copies and hidden layers.
_ENCODE_CHUNK_ROWS = 65536

_LEARNED = ("input_min_", "input_scale_", "layers_", "decoder_", "history_", "best_iteration_")
_INTEGER_HISTORY_KEYS = ("iteration", "lbfgs_iterations")
_SETTINGS = ("n_bits", "hidden", "lambdas", "max_outer", "lbfgs_iter", "n_validation", "validation_k", "dtype", "random_state")


def uh_objective(
    encoder: list[Layer], decoder: Layer | None, X: np.ndarray, B: np.ndarray, lambdas: tuple[float, float, float, float]
) -> tuple[dict[str, float], list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray] | None]:
    """Evaluate the UH-BDNN objective and its gradient for every parameter block.

    Parameters
    ----------
    encoder : list of Layer
        The three encoder layers.
    decoder : Layer or None
        Output layer with weight W4 of shape (D, L) and bias c4 of shape (D,).
        With None the reconstruction term and the decoder's weight decay, which
        do not depend on the encoder, are left out.
    X : ndarray of shape (m, D)
        Scaled training inputs, in the encoder's dtype.
    B : ndarray of shape (m, L)
        Auxiliary codes, -1/+1.
    lambdas : tuple of 4 floats
        (lambda1, lambda2, lambda3, lambda4).

    Returns
    -------
    terms : dict of str to float
        The terms of the objective by name (``UH_TERMS``, less the reconstruction without a decoder).
    encoder_gradient : list of (ndarray, ndarray)
        ``(dJ/dW, dJ/dc)`` for every encoder layer.
    decoder_gradient : (ndarray, ndarray) or None
        ``(dJ/dW4, dJ/dc4)``, or None without a decoder.
    """
    lambda1, lambda2, lambda3, lambda4 = lambdas
    m = X.shape[0]

    outputs = forward(encoder, X)
    penalties, code_gradient = code_layer_penalties(outputs[-1], B, lambda2, lambda3, lambda4)
    encoder_gradient = backward(encoder, X, outputs, code_gradient.astype(X.dtype))
    decay, decay_gradients = weight_decay(encoder if decoder is None else [*encoder, decoder], lambda1)
    encoder_gradient = [(dW + decay_dW, dc) for (dW, dc), decay_dW in zip(encoder_gradient, decay_gradients)]

    terms = {WEIGHT_DECAY_TERM: decay, **penalties}
    if decoder is None:
        return terms, encoder_gradient, None

    residual = X - B.astype(X.dtype) @ decoder.weight.T
    residual -= decoder.bias
    terms = {RECONSTRUCTION_TERM: 0.5 / m * float(np.sum(residual * residual, dtype=np.float64)), **terms}
    decoder_gradient = (-(residual.T @ B.astype(X.dtype)) / m + decay_gradients[-1], -residual.sum(axis=0) / m)
    return terms, encoder_gradient, decoder_gradient


def ridge_decoder(X: np.ndarray, B: np.ndarray, lambda1: float) -> Layer:
    """Return the decoder that minimises the reconstruction term plus its weight decay for fixed B.

    It minimises ``1/(2m) ||X - B W4^T - 1 c4^T||^2 + lambda1/2 ||W4||^2`` with an
    unregularised bias. With column means x and b and centred codes
    ``Bc = B - 1 b^T``, the solution is ``W4^T = (Bc^T Bc + m lambda1 I)^-1 Bc^T X``
    and ``c4 = x - W4 b``. The products are accumulated in float64.

    Parameters
    ----------
    X : ndarray of shape (m, D)
    B : ndarray of shape (m, L)
    lambda1 : float
        Weight decay; with 0 the centred codes must have full column rank.

    Returns
    -------
    Layer
        Weight of shape (D, L) and bias of shape (D,), in X's dtype.
    """
    m, n_bits = B.shape
    B = B.astype(np.float64, copy=False)
    code_mean = B.mean(axis=0)
    centred = B - code_mean
    input_mean = cross_product(np.ones((m, 1)), X)[0] / m

    # Bc^T X equals Bc^T (X - 1 x^T) because the columns of Bc sum to zero.
    system = centred.T @ centred + m * lambda1 * np.eye(n_bits)
    weight = np.linalg.solve(system, cross_product(centred, X)).T
    bias = input_mean - weight @ code_mean
    return Layer(weight.astype(X.dtype), bias.astype(X.dtype), IDENTITY)


def discrete_cyclic_descent(Q: np.ndarray, G: np.ndarray, n_sweeps: int) -> np.ndarray:
    """Minimise ``tr(B G B^T) - 2 <B, Q>`` over B in {-1, +1}^(m x L) by cyclic coordinate descent.

    The objective separates over samples (rows). Starting from B = 0, each sweep
    sets every bit column k in turn to its exact minimiser with the other bits
    fixed, ``sign(q_k - B_-k G_-k,k)``, for all samples at once. A zero
    argument gives +1, the same rule as the binarisation (bit 1 where H >= 0);
    with the other bits fixed, both values then give the same objective.

    Parameters
    ----------
    Q : ndarray of shape (m, L)
    G : ndarray of shape (L, L)
        Symmetric.
    n_sweeps : int
        Passes over the L bits (the authors use 10).

    Returns
    -------
    ndarray of shape (m, L), float64, entries -1/+1
    """
    # Bit rows are contiguous in the (L, m) layout.
    codes = np.zeros((Q.shape[1], Q.shape[0]))
    targets = np.ascontiguousarray(Q.T, dtype=np.float64)
    for _ in range(n_sweeps):
        for k in range(codes.shape[0]):
            others = G[k] @ codes - G[k, k] * codes[k]
            codes[k] = np.where(targets[k] - others >= 0, 1.0, -1.0)
    return codes.T.copy()


def uh_code_step(X: np.ndarray, H: np.ndarray, decoder: Layer, lambda2: float, n_sweeps: int = 10) -> np.ndarray:
    """Run the UH-BDNN B-step: minimise the reconstruction and binary terms over B.

    ``1/(2m) ||Y - B W4^T||^2 + lambda2/(2m) ||H - B||^2`` with ``Y = X - 1 c4^T``
    equals ``1/(2m) (tr(B G B^T) - 2 <B, Q>)`` plus a constant, for
    ``G = W4^T W4`` and ``Q = lambda2 H + Y W4``, because ``||B||^2 = mL`` is fixed.

    Parameters
    ----------
    X : ndarray of shape (m, D)
    H : ndarray of shape (m, L)
        Code layer output of the current encoder.
    decoder : Layer
        Current decoder (W4 of shape (D, L), c4).
    lambda2 : float
    n_sweeps : int

    Returns
    -------
    ndarray of shape (m, L), float64, entries -1/+1
    """
    weight = decoder.weight.astype(np.float64)
    projected = (X @ decoder.weight).astype(np.float64) - decoder.bias.astype(np.float64) @ weight
    Q = lambda2 * H.astype(np.float64) + projected
    return discrete_cyclic_descent(Q, weight.T @ weight, n_sweeps)


@dataclass
class UHObjective:
    """The UH-BDNN part of the alternating optimisation (a ``CodeObjective``).

    The decoder is always the closed-form ridge solution for the current codes.
    """

    X: np.ndarray
    lambdas: tuple[float, float, float, float]
    n_sweeps: int = 10
    term_names: tuple[str, ...] = UH_TERMS

    def encoder_loss(self, layers: list[Layer], codes: np.ndarray) -> tuple[dict[str, float], list[tuple[np.ndarray, np.ndarray]]]:
        """Return the terms that depend on the encoder and their gradient per encoder layer."""
        terms, encoder_gradient, _ = uh_objective(layers, None, self.X, codes, self.lambdas)
        return terms, encoder_gradient

    def loss_terms(self, layers: list[Layer], codes: np.ndarray) -> dict[str, float]:
        """Return the five terms of the objective with the closed-form decoder for ``codes``."""
        decoder = ridge_decoder(self.X, codes, self.lambdas[0])
        return uh_objective(layers, decoder, self.X, codes, self.lambdas)[0]

    def update_codes(self, layers: list[Layer], codes: np.ndarray) -> np.ndarray:
        """Run the B-step with the decoder fitted to the previous codes, as after a joint (W, c)-step."""
        decoder = ridge_decoder(self.X, codes, self.lambdas[0])
        H = forward(layers, self.X)[-1]
        return uh_code_step(self.X, H, decoder, self.lambdas[1], self.n_sweeps)


class UHBDNN:
    """UH-BDNN hashing estimator.

    Parameters
    ----------
    n_bits : int
        Code length L.
    hidden : tuple of 2 ints, optional
        Sizes (n1, n2) of the two sigmoid layers. Defaults to the authors' table
        for 8, 16, 24 and 32 bits and must be given for other code lengths.
        They must satisfy n1 <= n_features and L <= n2 <= n1, which the
        eigenvector initialisation needs.
    lambdas : tuple of 4 floats
        (lambda1, lambda2, lambda3, lambda4): weight decay, binary, independence
        and balance weights.
    max_outer : int
        Maximum number of outer iterations (B-step, (W, c)-step, validation)
        after the initial fit to the ITQ codes.
    lbfgs_iter : int
        L-BFGS iterations per (W, c)-step.
    n_validation : int
        Number of random training points used as validation queries against the
        whole training set; capped at the number of training points.
    validation_k : int
        Number of Euclidean nearest neighbours in the training set that count as
        relevant for a validation query (the query itself included).
    dtype : {"float32", "float64"}
        dtype of the network's forward and backward passes. The loss terms on
        the code layer, the decoder and the B-step are computed in float64
        either way, and L-BFGS works in float64.
    random_state : int
        Seed of ITQ's initial rotation and of the choice of validation queries.

    Attributes
    ----------
    input_min_ : ndarray of shape (n_features,)
        Per-feature training minimum subtracted from every input.
    input_scale_ : float
        Largest per-feature range of the training set; inputs are divided by it.
    layers_ : list of Layer
        Encoder: two sigmoid layers and the linear code layer.
    decoder_ : Layer
        Output layer: weight W4 of shape (n_features, n_bits) and bias.
    history_ : list of dict
        One entry per outer iteration (0 is the initial fit): ``iteration``, the
        five loss terms, ``validation_map`` (fraction), ``lbfgs_iterations``, ``seconds``.
    best_iteration_ : int
        Outer iteration whose network was kept.
    """

    def __init__(
        self,
        n_bits: int,
        hidden: tuple[int, int] | None = None,
        lambdas: tuple[float, float, float, float] = (1e-5, 5e-2, 1e-2, 5e-7),
        max_outer: int = 20,
        lbfgs_iter: int = 400,
        n_validation: int = 1000,
        validation_k: int = 50,
        dtype: str = "float32",
        random_state: int = 0,
    ) -> None:
        self.n_bits = n_bits
        self.hidden = hidden
        self.lambdas = lambdas
        self.max_outer = max_outer
        self.lbfgs_iter = lbfgs_iter
        self.n_validation = n_validation
        self.validation_k = validation_k
        self.dtype = dtype
        self.random_state = random_state

    def _hidden_sizes(self) -> tuple[int, int]:
        if self.hidden is None:
            if self.n_bits not in DEFAULT_HIDDEN:
                raise ValueError(
                    f"no default hidden sizes for n_bits={self.n_bits}: the authors' table covers "
                    f"{sorted(DEFAULT_HIDDEN)} bits, so pass hidden=(n1, n2) explicitly"
                )
            return DEFAULT_HIDDEN[self.n_bits]
        hidden = tuple(self.hidden)
        if len(hidden) != 2 or not all(isinstance(size, (int, np.integer)) and size >= 1 for size in hidden):
            raise ValueError(f"hidden must be two positive integers (n1, n2), got {self.hidden!r}")
        return int(hidden[0]), int(hidden[1])

    def _check_settings(self) -> None:
        def require_int(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        require_int("n_bits", 1)
        require_int("max_outer", 0)
        require_int("lbfgs_iter", 1)
        require_int("n_validation", 1)
        require_int("validation_k", 1)
        require_int("random_state", 0)
        lambdas = np.asarray(self.lambdas, dtype=np.float64)
        if lambdas.shape != (4,) or not np.all(np.isfinite(lambdas)) or np.any(lambdas < 0):
            raise ValueError(f"lambdas must be 4 finite non-negative numbers (lambda1..lambda4), got {self.lambdas!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        n1, n2 = self._hidden_sizes()
        if not self.n_bits <= n2 <= n1:
            raise ValueError(
                f"hidden sizes must satisfy n_bits <= n2 <= n1 for the eigenvector initialisation, "
                f"got n1={n1}, n2={n2}, n_bits={self.n_bits}"
            )

    def _scale(self, X: np.ndarray, minimum: np.ndarray, scale: float) -> np.ndarray:
        """Return ``(X - minimum) / scale`` in the network's dtype, computed in float64 by row chunks."""
        scaled = np.empty(X.shape, dtype=self.dtype)
        for start in range(0, X.shape[0], _ENCODE_CHUNK_ROWS):
            rows = slice(start, start + _ENCODE_CHUNK_ROWS)
            scaled[rows] = (X[rows].astype(np.float64) - minimum) / scale
        return scaled

    def fit(self, X: np.ndarray) -> "UHBDNN":
        """Train the network on ``X``, which is also the validation database.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training data, integer or floating point.

        Returns
        -------
        UHBDNN
            The fitted estimator.

        Raises
        ------
        ValueError
            On a bad setting, bad input or constant input.
        NonFiniteObjectiveError
            If the objective becomes NaN or infinite; the estimator then stays unfitted.
        """
        self._check_settings()
        X = require_feature_matrix(X, "X")
        for name in _LEARNED:
            self.__dict__.pop(name, None)
        n_samples, n_features = X.shape
        n1, n2 = self._hidden_sizes()
        if n1 > n_features:
            raise ValueError(f"hidden[0]={n1} exceeds the number of features ({n_features}); pass smaller hidden sizes")
        if not self.validation_k <= n_samples:
            raise ValueError(f"validation_k={self.validation_k} exceeds the number of training samples ({n_samples})")
        start = time.perf_counter()
        logger.info(
            "UH-BDNN %d bits: training on %d x %d data, hidden sizes (%d, %d), %s",
            self.n_bits, n_samples, n_features, n1, n2, self.dtype,
        )

        # One scalar scale for all features keeps their relative ranges.
        minimum = X.min(axis=0).astype(np.float64)
        scale = float(np.max(X.max(axis=0) - minimum))
        if scale == 0:
            raise ValueError("X is constant: every feature has zero range, so it cannot be scaled")
        scaled = self._scale(X, minimum, scale)

        initial_codes = 2.0 * ITQ(self.n_bits, random_state=self.random_state).fit(scaled).encode(scaled) - 1.0
        layers = eigenvector_layers(scaled, [n1, n2, self.n_bits], [SIGMOID, SIGMOID, IDENTITY], np.dtype(self.dtype))
        validate = self._validation(X, scaled)

        lambdas = tuple(float(value) for value in self.lambdas)
        result = train_binary_encoder(
            UHObjective(scaled, lambdas),
            layers,
            initial_codes,
            max_outer=self.max_outer,
            lbfgs_iter=self.lbfgs_iter,
            validate=validate,
            name=f"UH-BDNN {self.n_bits} bits",
        )

        self.input_min_ = minimum
        self.input_scale_ = scale
        self.layers_ = result.layers
        self.decoder_ = ridge_decoder(scaled, result.codes, lambdas[0])
        self.history_ = result.history
        self.best_iteration_ = result.best_iteration
        logger.info(
            "UH-BDNN %d bits: finished in %.1f s, kept outer iteration %d (validation mAP %.2f)",
            self.n_bits, time.perf_counter() - start, self.best_iteration_,
            100 * self.history_[self.best_iteration_]["validation_map"],
        )
        return self

    def _validation(self, X: np.ndarray, scaled: np.ndarray) -> RetrievalValidation:
        """Draw the validation queries and their Euclidean K-NN ground truth in the training set."""
        n_queries = min(self.n_validation, X.shape[0])
        rng = np.random.default_rng(self.random_state)
        queries = np.sort(rng.choice(X.shape[0], size=n_queries, replace=False))

        # The scaling is a shift and one positive factor, so the raw data give the same neighbours without rounding.
        relevant = knn_ground_truth(X[queries], X, self.validation_k, show_progress=False)
        return RetrievalValidation(scaled[queries], scaled, relevant=relevant)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Return the binary codes of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_bits), uint8
            Bit 1 where the code layer output H is >= 0, else 0.
        """
        if not hasattr(self, "layers_"):
            raise RuntimeError("UHBDNN is not fitted: call fit(X) or UHBDNN.load(path) first")
        X = require_feature_matrix(X, "X")
        if X.shape[1] != self.input_min_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, the model was trained on {self.input_min_.shape[0]}")
        codes = np.empty((X.shape[0], self.n_bits), dtype=np.uint8)
        for start in range(0, X.shape[0], _ENCODE_CHUNK_ROWS):
            rows = slice(start, start + _ENCODE_CHUNK_ROWS)
            codes[rows] = encode_bits(self.layers_, self._scale(X[rows], self.input_min_, self.input_scale_))
        return codes

    def save(self, path: str | os.PathLike) -> None:
        """Write the settings and learned weights to ``path`` as an ``.npz`` archive, atomically."""
        if not hasattr(self, "layers_"):
            raise RuntimeError("UHBDNN is not fitted: nothing to save")
        arrays = {name: np.asarray(getattr(self, name)) for name in _SETTINGS if name != "hidden"}
        arrays["hidden"] = np.asarray(self._hidden_sizes())
        arrays.update(
            model=np.asarray("UHBDNN"),
            input_min=self.input_min_,
            input_scale=np.asarray(self.input_scale_),
            decoder_weight=self.decoder_.weight,
            decoder_bias=self.decoder_.bias,
            best_iteration=np.asarray(self.best_iteration_),
            history_keys=np.asarray(list(self.history_[0])),
            history_values=np.asarray([list(entry.values()) for entry in self.history_], dtype=np.float64),
        )
        for index, layer in enumerate(self.layers_):
            arrays[f"layer{index}_weight"] = layer.weight
            arrays[f"layer{index}_bias"] = layer.bias
        save_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "UHBDNN":
        """Read a model written by ``save``.

        Raises
        ------
        ValueError
            If the file is not a saved UHBDNN model.
        """
        arrays = load_npz(path)
        if str(arrays.get("model", "")) != "UHBDNN":
            raise ValueError(f"{path} is not a saved UHBDNN model (missing or wrong 'model' entry)")
        model = cls(
            n_bits=int(arrays["n_bits"]),
            hidden=tuple(int(size) for size in arrays["hidden"]),
            lambdas=tuple(float(value) for value in arrays["lambdas"]),
            max_outer=int(arrays["max_outer"]),
            lbfgs_iter=int(arrays["lbfgs_iter"]),
            n_validation=int(arrays["n_validation"]),
            validation_k=int(arrays["validation_k"]),
            dtype=str(arrays["dtype"]),
            random_state=int(arrays["random_state"]),
        )
        model.input_min_ = arrays["input_min"]
        model.input_scale_ = float(arrays["input_scale"])
        activations = [SIGMOID, SIGMOID, IDENTITY]
        model.layers_ = [
            Layer(arrays[f"layer{index}_weight"], arrays[f"layer{index}_bias"], activation)
            for index, activation in enumerate(activations)
        ]
        model.decoder_ = Layer(arrays["decoder_weight"], arrays["decoder_bias"], IDENTITY)
        model.best_iteration_ = int(arrays["best_iteration"])
        keys = [str(key) for key in arrays["history_keys"]]
        model.history_ = [dict(zip(keys, (float(value) for value in row))) for row in arrays["history_values"]]
        for entry in model.history_:
            for name in _INTEGER_HISTORY_KEYS:
                entry[name] = int(entry[name])
        return model
