"""Alternating optimisation shared by the binary deep networks (UH-BDNN, SH-BDNN).

Both methods minimise an objective over the encoder weights (W, c) and an
auxiliary binary matrix B in {-1, +1}^(m x L) by alternating:

1. a B-step that the objective supplies (``CodeObjective.update_codes``);
2. a (W, c)-step: full-batch L-BFGS on the encoder weights with B fixed;
3. validation by retrieval mAP, stopping at the first outer iteration that
   does not improve it and keeping the best network.

An objective plugs in by implementing the ``CodeObjective`` protocol. The
terms that both objectives share (weight decay and the three code-layer
penalties) are computed here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from bdnn.evaluation.metrics import mean_average_precision
from bdnn.hashing.network import Layer, encode_bits, layer_arrays, pack, unpack_layers

logger = logging.getLogger(__name__)

# The authors ran minFunc's L-BFGS with 400 iterations, at most 1000 function
# evaluations, optimality tolerance 1e-5 (max |gradient|), progress tolerance 1e-9,
# 100 stored corrections and a strong-Wolfe line search. scipy's L-BFGS-B without
# bounds maps them as follows. gtol is the same max-|gradient| test. ftol stops when
# (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol, which equals minFunc's absolute
# test |f_k - f_k+1| < 1e-9 while |f| <= 1. scipy has no test on the step length,
# minFunc's second use of the progress tolerance. scipy's line search (Moré and
# Thuente) enforces the strong Wolfe conditions with c1 = 1e-3 and c2 = 0.9, where
# minFunc uses c1 = 1e-4, and scipy does not expose c1.
LBFGS_OPTIONS: dict[str, Any] = {"maxfun": 1000, "gtol": 1e-5, "ftol": 1e-9, "maxcor": 100}

BINARY_TERM = "binary"
INDEPENDENCE_TERM = "independence"
BALANCE_TERM = "balance"
WEIGHT_DECAY_TERM = "weight_decay"


class NonFiniteObjectiveError(FloatingPointError):
    """A loss term, a gradient or the codes became NaN or infinite during training.

    Attributes
    ----------
    iteration : int
        Outer iteration; 0 is the initial (W, c)-step that fits the ITQ codes B0.
    term : str
        Name of the loss term, or ``"gradient"``, or ``"codes"`` for the B-step.
    value : float
        The offending value (the first non-finite entry for arrays).
    """

    def __init__(self, iteration: int, term: str, value: float) -> None:
        self.iteration = iteration
        self.term = term
        self.value = value
        stage = "the initial (W, c)-step fitting B0" if iteration == 0 else f"outer iteration {iteration}"
        super().__init__(
            f"{term} is {value} at outer iteration {iteration} ({stage}); training stopped and no model "
            "was stored. Check that the input is scaled and that the lambdas are not too large."
        )


def weight_decay(layers: list[Layer], lambda1: float) -> tuple[float, list[np.ndarray]]:
    """Return ``lambda1 / 2 * sum ||W||^2`` over the layers (biases excluded) and its gradient per weight."""
    value = 0.5 * lambda1 * sum(float(np.sum(layer.weight * layer.weight, dtype=np.float64)) for layer in layers)
    return value, [lambda1 * layer.weight for layer in layers]


def code_layer_penalties(
    H: np.ndarray, B: np.ndarray, lambda2: float, lambda3: float, lambda4: float
) -> tuple[dict[str, float], np.ndarray]:
    """Compute the three code-layer penalties and their gradient with respect to H.

    With samples as rows (H and B of shape (m, L)):

    - binary: ``lambda2 / (2m) * ||H - B||^2``
    - independence: ``lambda3 / 2 * ||H.T @ H / m - I||^2``
    - balance: ``lambda4 / (2m) * ||H.T @ 1||^2``

    The penalties are computed in float64 whatever the dtype of H, because they
    take small differences of sums over all m samples.

    Returns
    -------
    terms : dict of str to float
    gradient : ndarray of shape (m, L), float64
        Sum of the three terms' gradients with respect to H.
    """
    H = H.astype(np.float64, copy=False)
    m, n_bits = H.shape

    difference = H - B
    covariance_error = H.T @ H / m - np.eye(n_bits)
    column_sums = H.sum(axis=0)
    terms = {
        BINARY_TERM: 0.5 * lambda2 / m * float(np.sum(difference * difference)),
        INDEPENDENCE_TERM: 0.5 * lambda3 * float(np.sum(covariance_error * covariance_error)),
        BALANCE_TERM: 0.5 * lambda4 / m * float(column_sums @ column_sums),
    }

    # d/dH of lambda3/2 ||H^T H/m - I||^2 is 2 lambda3/m H (H^T H/m - I), because the error matrix is symmetric.
    gradient = (lambda2 / m) * difference
    gradient += (2.0 * lambda3 / m) * (H @ covariance_error)
    gradient += (lambda4 / m) * column_sums
    return terms, gradient


class CodeObjective(Protocol):
    """The part of a binary deep network's training that differs between methods.

    ``codes`` is always the auxiliary binary matrix B as a float array of
    -1/+1 of shape (m, L).
    """

    term_names: tuple[str, ...]

    def encoder_loss(self, layers: list[Layer], codes: np.ndarray) -> tuple[dict[str, float], list[tuple[np.ndarray, np.ndarray]]]:
        """Return the terms that depend on the encoder and their gradient ``(dW, dc)`` per layer.

        L-BFGS minimises the sum of these terms. Terms that are constant for a
        fixed B may be left out.
        """
        ...

    def loss_terms(self, layers: list[Layer], codes: np.ndarray) -> dict[str, float]:
        """Return every term of the full objective, named as in ``term_names``."""
        ...

    def update_codes(self, layers: list[Layer], codes: np.ndarray) -> np.ndarray:
        """Return the B-step's new codes given the network and the previous codes."""
        ...


@dataclass
class RetrievalValidation:
    """Retrieval mAP (trapezoid AP) of the network's codes, the validation score of the outer loop.

    Give either ``relevant`` (database indices relevant to each query) or both
    label arrays (relevant = same label).
    """

    queries: np.ndarray
    database: np.ndarray
    relevant: np.ndarray | None = None
    query_labels: np.ndarray | None = None
    database_labels: np.ndarray | None = None

    def __call__(self, layers: list[Layer]) -> float:
        """Encode queries and database with ``layers`` and return the mAP as a fraction in [0, 1]."""
        return mean_average_precision(
            encode_bits(layers, self.queries),
            encode_bits(layers, self.database),
            relevant=self.relevant,
            query_labels=self.query_labels,
            database_labels=self.database_labels,
            ap="trapezoid",
        )


@dataclass
class TrainingResult:
    """Outcome of ``train_binary_encoder``.

    Attributes
    ----------
    layers : list of Layer
        The encoder of the outer iteration with the best validation mAP.
    codes : ndarray of shape (m, L)
        The B (-1/+1) that this encoder was fitted to.
    best_iteration : int
        Its outer iteration (0 is the initial fit to B0).
    history : list of dict
        One entry per outer iteration, 0 included: ``iteration``, every loss
        term, ``validation_map`` (fraction), ``lbfgs_iterations`` and ``seconds``.
    """

    layers: list[Layer]
    codes: np.ndarray
    best_iteration: int
    history: list[dict[str, float]] = field(default_factory=list)


def _require_finite_terms(terms: dict[str, float], iteration: int) -> None:
    for name, value in terms.items():
        if not math.isfinite(value):
            raise NonFiniteObjectiveError(iteration, name, value)


def _require_finite_array(array: np.ndarray, iteration: int, term: str) -> None:
    finite = np.isfinite(array)
    if not np.all(finite):
        raise NonFiniteObjectiveError(iteration, term, float(array.ravel()[np.argmin(finite.ravel())]))


def fit_weights(
    objective: CodeObjective, layers: list[Layer], codes: np.ndarray, *, max_iter: int, iteration: int
) -> tuple[list[Layer], int]:
    """Run the (W, c)-step: L-BFGS on the encoder weights with the codes fixed.

    Parameters
    ----------
    objective : CodeObjective
    layers : list of Layer
        Starting encoder. Its dtype is kept for the forward and backward passes.
    codes : ndarray of shape (m, L)
        Fixed B, -1/+1.
    max_iter : int
        Maximum number of L-BFGS iterations (the authors use 400).
    iteration : int
        Outer iteration, for logs and errors.

    Returns
    -------
    layers : list of Layer
        The encoder at the end of L-BFGS.
    n_iter : int
        L-BFGS iterations run.

    Raises
    ------
    NonFiniteObjectiveError
        If a term or the gradient is NaN or infinite at any evaluation.
    """
    dtype = layers[0].weight.dtype
    controller = ThreadpoolController()
    default_threads = controller.info()

    def loss_and_gradient(vector: np.ndarray) -> tuple[float, np.ndarray]:
        with controller.limit(limits=default_threads):
            current = unpack_layers(vector, layers, dtype)
            terms, gradients = objective.encoder_loss(current, codes)
        _require_finite_terms(terms, iteration)
        flat = pack([array for pair in gradients for array in pair])
        _require_finite_array(flat, iteration, "gradient")
        return sum(terms.values()), flat

    # L-BFGS-B's own vector operations run on one BLAS thread, and the objective on the default threads.
    # Its many small BLAS calls gain nothing from a second thread and suffer when cores are busy. With
    # 100 corrections and 73,876 variables an iteration took 0.039 s at 2 threads and 0.038 s at one on
    # an idle machine. On 2 cores shared with other jobs it took 0.58 s against 0.097 s (scipy 1.17.1,
    # OpenBLAS 0.3.31, benchmarks/bench_uh_bdnn.py --lbfgs-overhead).
    with controller.limit(limits=1, user_api="blas"):
        result = minimize(
            loss_and_gradient,
            pack(layer_arrays(layers)),
            jac=True,
            method="L-BFGS-B",
            options={**LBFGS_OPTIONS, "maxiter": max_iter},
        )
    logger.debug(
        "(W, c)-step of outer iteration %d: %d L-BFGS iterations, %d evaluations, loss %.6g (%s)",
        iteration, result.nit, result.nfev, result.fun, result.message,
    )
    return unpack_layers(result.x, layers, dtype), int(result.nit)


def train_binary_encoder(
    objective: CodeObjective,
    layers: list[Layer],
    initial_codes: np.ndarray,
    *,
    max_outer: int,
    lbfgs_iter: int,
    validate: Callable[[list[Layer]], float],
    name: str = "BDNN",
) -> TrainingResult:
    """Fit the encoder to ``initial_codes``, then alternate B-steps and (W, c)-steps.

    After the initial (W, c)-step (outer iteration 0) every outer iteration runs
    the objective's B-step, a (W, c)-step and ``validate``. Training stops at the
    first outer iteration whose validation mAP is not strictly above the best so
    far, or after ``max_outer`` iterations, and returns the best network.

    NOTE: the initial network (outer iteration 0) is validated too and can be
    the one returned. Whether the authors' code validated it is not confirmed.

    Parameters
    ----------
    objective : CodeObjective
    layers : list of Layer
        Initial encoder (for example from ``eigenvector_layers``).
    initial_codes : ndarray of shape (m, L)
        B0, -1/+1.
    max_outer : int
        Maximum number of outer iterations after the initial fit.
    lbfgs_iter : int
        L-BFGS iterations per (W, c)-step.
    validate : callable
        Maps an encoder to a score to maximise (validation mAP).
    name : str
        Method name for the logs.

    Returns
    -------
    TrainingResult

    Raises
    ------
    NonFiniteObjectiveError
        If a loss term, a gradient or the codes become NaN or infinite.
    """
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    layers, n_iter = fit_weights(objective, layers, initial_codes, max_iter=lbfgs_iter, iteration=0)
    codes = initial_codes
    score = _record(history, objective, layers, codes, validate, 0, n_iter, start, name, max_outer)
    best = TrainingResult([layer.copy() for layer in layers], codes, 0)

    for iteration in range(1, max_outer + 1):
        start = time.perf_counter()
        codes = objective.update_codes(layers, codes)
        _require_finite_array(codes, iteration, "codes")
        layers, n_iter = fit_weights(objective, layers, codes, max_iter=lbfgs_iter, iteration=iteration)
        previous_best = max(entry["validation_map"] for entry in history)
        score = _record(history, objective, layers, codes, validate, iteration, n_iter, start, name, max_outer)

        # "not >" so that a NaN score also stops training.
        if not score > previous_best:
            logger.info(
                "%s: validation mAP %.2f did not improve on %.2f; stopping and keeping outer iteration %d",
                name, 100 * score, 100 * previous_best, best.best_iteration,
            )
            break
        best = TrainingResult([layer.copy() for layer in layers], codes, iteration)

    best.history = history
    return best


def _record(
    history: list[dict[str, float]],
    objective: CodeObjective,
    layers: list[Layer],
    codes: np.ndarray,
    validate: Callable[[list[Layer]], float],
    iteration: int,
    n_iter: int,
    start: float,
    name: str,
    max_outer: int,
) -> float:
    """Validate the network, append a history entry, log it and return the validation mAP."""
    terms = objective.loss_terms(layers, codes)
    _require_finite_terms(terms, iteration)
    score = float(validate(layers))
    seconds = time.perf_counter() - start
    history.append({"iteration": iteration, **terms, "validation_map": score, "lbfgs_iterations": n_iter, "seconds": seconds})
    logger.info(
        "%s outer iteration %d/%d: %s, total %.6g; validation mAP %.2f; %d L-BFGS iterations; %.1f s",
        name, iteration, max_outer, ", ".join(f"{key} {value:.6g}" for key, value in terms.items()),
        sum(terms.values()), 100 * score, n_iter, seconds,
    )
    return score
