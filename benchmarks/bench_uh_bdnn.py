"""Measure the speed of UH-BDNN training on MNIST and check its retrieval quality on a subset.

Six measurements, each selected by an option:

- ``--matmul``: numpy matrix-multiply throughput (GFLOP/s) in float32 and
  float64 for the products of the first layer, the bulk of the work;
- ``--evaluation``: seconds per objective-and-gradient evaluation and per
  L-BFGS iteration on the full 60,000 x 784 training set, against the
  floating-point operations the forward and backward passes do;
- ``--lbfgs-overhead``: seconds per iteration of scipy's L-BFGS-B alone (on
  a quadratic with as many variables as the network), at the default number
  of BLAS threads and at one;
- ``--train``: the full training time of one code length on the 60,000
  training images, and the mAP of UH-BDNN and ITQ on the MNIST protocol
  (database = training set, queries = the 10,000 test images, relevant = the
  50 Euclidean nearest neighbours);
- ``--precision``: the relative difference between one objective-and-gradient
  evaluation in float32 and in float64 on the subset below;
- ``--subset``: the quick retrieval check on the MNIST test file (database and
  training set = its first 9,000 images, queries = its last 1,000, relevant =
  the 50 Euclidean nearest neighbours), UH-BDNN against ITQ, in the given dtypes.

Results are logged and written as JSON to ``--output``.

Example::

    python benchmarks/bench_uh_bdnn.py --mnist-dir DIR --matmul --evaluation --output out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_info, threadpool_limits

from bdnn.data.readers import read_mnist_images
from bdnn.evaluation.ground_truth import knn_ground_truth
from bdnn.evaluation.metrics import mean_average_precision
from bdnn.hashing.itq import ITQ
from bdnn.hashing.network import IDENTITY, SIGMOID, Layer, eigenvector_layers, layer_arrays, pack
from bdnn.hashing.training import LBFGS_OPTIONS, fit_weights
from bdnn.hashing.uh_bdnn import DEFAULT_HIDDEN, UHBDNN, UHObjective

logger = logging.getLogger("bench_uh_bdnn")

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
SUBSET_DATABASE = 9000
# Number of Euclidean nearest neighbours that count as relevant to a query (50 for MNIST in the authors' protocol).
K_NEIGHBOURS = 50


def load_images(mnist_dir: Path, name: str) -> np.ndarray:
    """Read an MNIST image file as a (n, 784) uint8 array."""
    images = read_mnist_images(mnist_dir / name)
    return images.reshape(images.shape[0], -1)


def best_seconds(function, repeats: int) -> float:
    """Return the shortest wall time of ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_matmul(m: int, n_features: int, n_hidden: int, repeats: int) -> dict[str, Any]:
    """Time the first layer's forward and weight-gradient products.

    The forward product is ``X @ W.T``. The weight gradient is timed in the form
    the network uses, ``(X.T @ delta).T``, and in the equivalent ``delta.T @ X``.
    """
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"shape": [m, n_features, n_hidden]}
    flops = 2.0 * m * n_features * n_hidden
    for dtype in ("float32", "float64"):
        X = rng.random((m, n_features)).astype(dtype)
        weight = rng.standard_normal((n_hidden, n_features)).astype(dtype)
        delta = rng.standard_normal((m, n_hidden)).astype(dtype)
        forward_seconds = best_seconds(lambda: X @ weight.T, repeats)
        gradient_seconds = best_seconds(lambda: (X.T @ delta).T, repeats)
        other_form_seconds = best_seconds(lambda: delta.T @ X, repeats)
        results[dtype] = {
            "forward_gflops": flops / forward_seconds / 1e9,
            "gradient_gflops": flops / gradient_seconds / 1e9,
            "gradient_other_form_gflops": flops / other_form_seconds / 1e9,
            "gflops": 2 * flops / (forward_seconds + gradient_seconds) / 1e9,
        }
        logger.info(
            "matmul %s (%d x %d) @ (%d x %d): forward %.1f GFLOP/s, gradient (X.T @ delta).T %.1f GFLOP/s, "
            "delta.T @ X %.1f GFLOP/s",
            dtype, m, n_features, n_features, n_hidden, results[dtype]["forward_gflops"],
            results[dtype]["gradient_gflops"], results[dtype]["gradient_other_form_gflops"],
        )
    return results


def evaluation_flops(m: int, sizes: list[int]) -> float:
    """Count the floating-point operations of one objective-and-gradient evaluation of the encoder.

    ``sizes`` is [D, n1, n2, L]. Each multiply-add of a matrix product counts as
    2 operations. The count covers the forward pass and the weight gradient of
    every layer, the input gradient of every layer but the first, and the two
    m x L x L products of the independence term. Element-wise work is left out.
    """
    forward = sum(2.0 * m * sizes[i] * sizes[i + 1] for i in range(3))
    input_gradients = sum(2.0 * m * sizes[i] * sizes[i + 1] for i in range(1, 3))
    independence = 2 * 2.0 * m * sizes[3] ** 2
    return 2 * forward + input_gradients + independence


class EvaluationCounter:
    """Wrap a ``CodeObjective`` and count the calls of ``encoder_loss``."""

    def __init__(self, objective: UHObjective) -> None:
        self.objective = objective
        self.term_names = objective.term_names
        self.count = 0

    def encoder_loss(self, layers: list, codes: np.ndarray) -> tuple:
        self.count += 1
        return self.objective.encoder_loss(layers, codes)


def measure_evaluation(X: np.ndarray, n_bits: int, dtype: str, lbfgs_iter: int, repeats: int) -> dict[str, Any]:
    """Time objective-and-gradient evaluations and L-BFGS iterations on ``X`` (raw pixels).

    Each repeat times the first layer's two products (forward and weight
    gradient) and then one evaluation, so that both see the same load on a
    shared machine. The best of each gives the fraction of the matmul
    throughput that an evaluation reaches.
    """
    n1, n2 = DEFAULT_HIDDEN[n_bits]
    scaled = (X / np.float64(np.ptp(X, axis=0).max())).astype(dtype)
    layers = eigenvector_layers(scaled, [n1, n2, n_bits], [SIGMOID, SIGMOID, IDENTITY], np.dtype(dtype))
    codes = np.random.default_rng(0).choice([-1.0, 1.0], size=(X.shape[0], n_bits))
    objective = UHObjective(scaled, (1e-5, 5e-2, 1e-2, 5e-7))

    weight = layers[0].weight
    delta = np.random.default_rng(1).standard_normal((X.shape[0], n1)).astype(dtype)
    matmul_seconds, evaluation_seconds = [], []
    for _ in range(repeats):
        matmul_seconds.append(best_seconds(lambda: (scaled @ weight.T, (scaled.T @ delta).T), 1))
        evaluation_seconds.append(best_seconds(lambda: objective.encoder_loss(layers, codes), 1))
    matmul_gflops = 2 * 2.0 * X.shape[0] * X.shape[1] * n1 / min(matmul_seconds) / 1e9
    evaluation_seconds = min(evaluation_seconds)
    flops = evaluation_flops(X.shape[0], [X.shape[1], n1, n2, n_bits])

    counter = EvaluationCounter(objective)
    start = time.perf_counter()
    _, n_iter = fit_weights(counter, layers, codes, max_iter=lbfgs_iter, iteration=0)
    lbfgs_seconds = time.perf_counter() - start
    results = {
        "dtype": dtype,
        "n_parameters": int(pack(layer_arrays(layers)).size),
        "gflop_per_evaluation": flops / 1e9,
        "seconds_per_evaluation": evaluation_seconds,
        "gflops": flops / evaluation_seconds / 1e9,
        "matmul_gflops": matmul_gflops,
        "fraction_of_matmul": flops / evaluation_seconds / 1e9 / matmul_gflops,
        "lbfgs_iterations": n_iter,
        "lbfgs_evaluations": counter.count,
        "seconds_per_lbfgs_iteration": lbfgs_seconds / n_iter,
        "seconds_per_lbfgs_evaluation": lbfgs_seconds / counter.count,
    }
    logger.info(
        "evaluation %s: %.3f s for %.2f GFLOP (%.1f GFLOP/s); L-BFGS: %d iterations, %d evaluations, "
        "%.3f s per iteration, %.3f s per evaluation",
        dtype, evaluation_seconds, flops / 1e9, results["gflops"], n_iter, counter.count,
        results["seconds_per_lbfgs_iteration"], results["seconds_per_lbfgs_evaluation"],
    )
    logger.info("evaluation %s reaches %.0f%% of the first layer's matmul throughput (%.1f GFLOP/s) measured alongside",
                dtype, 100 * results["fraction_of_matmul"], matmul_gflops)
    return results


def measure_lbfgs_overhead(n_parameters: int, n_iter: int) -> dict[str, Any]:
    """Time scipy's L-BFGS-B alone, with the authors' 100 corrections, at default and at one BLAS thread.

    The objective is a cheap separable quadratic with as many variables as the
    network, so nearly all the time is spent inside L-BFGS-B.
    """
    rng = np.random.default_rng(0)
    curvature = rng.random(n_parameters) + 0.01
    start_point = rng.standard_normal(n_parameters)

    def quadratic(vector: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.5 * float(np.sum(curvature * vector * vector)), curvature * vector

    def run() -> float:
        start = time.perf_counter()
        result = minimize(quadratic, start_point, jac=True, method="L-BFGS-B",
                          options={**LBFGS_OPTIONS, "maxiter": n_iter, "gtol": 0.0, "ftol": 0.0})
        return (time.perf_counter() - start) / result.nit

    results: dict[str, Any] = {"n_parameters": n_parameters, "maxcor": LBFGS_OPTIONS["maxcor"]}
    results["seconds_per_iteration_default_threads"] = run()
    with threadpool_limits(limits=1, user_api="blas"):
        results["seconds_per_iteration_one_thread"] = run()
    logger.info(
        "L-BFGS-B alone, %d variables, %d corrections: %.3f s per iteration at default BLAS threads, %.3f s at one",
        n_parameters, results["maxcor"], results["seconds_per_iteration_default_threads"],
        results["seconds_per_iteration_one_thread"],
    )
    return results


def train_full(train_images: np.ndarray, test_images: np.ndarray, n_bits: int, dtypes: list[str]) -> dict[str, Any]:
    """Train UH-BDNN and ITQ on the 60,000 training images and evaluate them on the MNIST protocol.

    Database = training set, queries = the 10,000 test images, relevant = the
    50 Euclidean nearest neighbours in the database; mAP is trapezoid AP in percent.
    """
    relevant = knn_ground_truth(test_images, train_images, K_NEIGHBOURS, show_progress=False)

    def retrieval_map(model: Any) -> float:
        return 100 * mean_average_precision(model.encode(test_images), model.encode(train_images), relevant=relevant)

    start = time.perf_counter()
    itq = ITQ(n_bits, random_state=0).fit(train_images)
    runs: list[dict[str, Any]] = [{"method": "ITQ", "map": retrieval_map(itq), "seconds": time.perf_counter() - start}]
    logger.info("MNIST ITQ %d bits: mAP %.2f", n_bits, runs[0]["map"])
    for dtype in dtypes:
        start = time.perf_counter()
        model = UHBDNN(n_bits, dtype=dtype).fit(train_images)
        seconds = time.perf_counter() - start
        runs.append({
            "method": "UH-BDNN", "dtype": dtype, "map": retrieval_map(model), "seconds": seconds,
            "best_iteration": model.best_iteration_, "outer_iterations": len(model.history_) - 1,
            "history": model.history_,
        })
        logger.info("MNIST UH-BDNN %d bits %s: mAP %.2f, %d outer iterations, %.0f s",
                    n_bits, dtype, runs[-1]["map"], runs[-1]["outer_iterations"], seconds)
    return {"n_bits": n_bits, "runs": runs}


def compare_precision(test_images: np.ndarray, n_bits: int) -> dict[str, Any]:
    """Compare one objective-and-gradient evaluation in float32 with float64 on the subset's training set.

    The network is the eigenvector initialisation (computed in float64, then
    rounded for float32) and B is ITQ's codes, the state before the first (W, c)-step.
    """
    n1, n2 = DEFAULT_HIDDEN[n_bits]
    scaled = test_images[:SUBSET_DATABASE] / np.float64(np.ptp(test_images[:SUBSET_DATABASE], axis=0).max())
    codes = 2.0 * ITQ(n_bits, random_state=0).fit(scaled).encode(scaled) - 1.0
    layers = eigenvector_layers(scaled, [n1, n2, n_bits], [SIGMOID, SIGMOID, IDENTITY], np.dtype(np.float64))
    lambdas = (1e-5, 5e-2, 1e-2, 5e-7)

    evaluations = {}
    for dtype in ("float32", "float64"):
        rounded = [Layer(layer.weight.astype(dtype), layer.bias.astype(dtype), layer.activation) for layer in layers]
        terms, gradients = UHObjective(scaled.astype(dtype), lambdas).encoder_loss(rounded, codes)
        evaluations[dtype] = (terms, pack([array for pair in gradients for array in pair]))

    (terms32, gradient32), (terms64, gradient64) = evaluations["float32"], evaluations["float64"]
    results = {
        "term_relative_difference": {name: abs(terms32[name] - terms64[name]) / abs(terms64[name]) for name in terms64},
        "gradient_relative_difference": float(np.linalg.norm(gradient32 - gradient64) / np.linalg.norm(gradient64)),
    }
    logger.info("float32 against float64: loss terms differ by at most %.1e relative, the gradient by %.1e",
                max(results["term_relative_difference"].values()), results["gradient_relative_difference"])
    return results


def subset_check(test_images: np.ndarray, n_bits: int, dtypes: list[str], random_states: list[int]) -> dict[str, Any]:
    """Compare UH-BDNN and ITQ on the quick MNIST subset (trapezoid mAP in percent)."""
    database, queries = test_images[:SUBSET_DATABASE], test_images[SUBSET_DATABASE:]
    relevant = knn_ground_truth(queries, database, K_NEIGHBOURS, show_progress=False)

    def retrieval_map(model: Any) -> float:
        return 100 * mean_average_precision(model.encode(queries), model.encode(database), relevant=relevant)

    start = time.perf_counter()
    itq = ITQ(n_bits, random_state=0).fit(database)
    runs: list[dict[str, Any]] = [
        {"method": "ITQ", "map": retrieval_map(itq), "seconds": time.perf_counter() - start}
    ]
    logger.info("subset ITQ %d bits: mAP %.2f", n_bits, runs[0]["map"])
    codes: dict[tuple[str, int], np.ndarray] = {}
    for dtype in dtypes:
        for random_state in random_states:
            start = time.perf_counter()
            model = UHBDNN(n_bits, dtype=dtype, random_state=random_state).fit(database)
            seconds = time.perf_counter() - start
            codes[dtype, random_state] = model.encode(test_images)
            runs.append({
                "method": "UH-BDNN", "dtype": dtype, "random_state": random_state, "map": retrieval_map(model),
                "seconds": seconds, "best_iteration": model.best_iteration_,
                "outer_iterations": len(model.history_) - 1, "history": model.history_,
            })
            logger.info("subset UH-BDNN %d bits %s seed %d: mAP %.2f, %d outer iterations, %.0f s",
                        n_bits, dtype, random_state, runs[-1]["map"], runs[-1]["outer_iterations"], seconds)

    # Fraction of equal bits between every pair of runs, on all 10,000 images.
    agreement = {
        f"{first[0]}/{first[1]} vs {second[0]}/{second[1]}": float(np.mean(codes[first] == codes[second]))
        for index, first in enumerate(codes)
        for second in list(codes)[index + 1 :]
    }
    return {"n_bits": n_bits, "runs": runs, "bit_agreement": agreement}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", type=Path, required=True,
                        help="folder with the MNIST files train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz")
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--bits", type=int, default=16, choices=sorted(DEFAULT_HIDDEN), help="code length (default 16)")
    parser.add_argument("--matmul", action="store_true", help="measure matrix-multiply throughput")
    parser.add_argument("--evaluation", action="store_true", help="time objective evaluations and L-BFGS iterations")
    parser.add_argument("--lbfgs-overhead", action="store_true",
                        help="time scipy's L-BFGS-B alone at default and at one BLAS thread")
    parser.add_argument("--train", action="store_true",
                        help="train on the 60,000 training images and evaluate on the 10,000 test images")
    parser.add_argument("--subset", action="store_true", help="run the quick retrieval check on the test file")
    parser.add_argument("--precision", action="store_true",
                        help="compare one objective evaluation in float32 with float64 on the subset")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"],
                        help="network dtypes to measure (default: both)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="random_state values for --subset (default 0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement; the best is kept (default 5)")
    parser.add_argument("--lbfgs-iter", type=int, default=20, help="L-BFGS iterations timed by --evaluation (default 20)")
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "blas": threadpool_info()},
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
    }
    if arguments.matmul or arguments.evaluation or arguments.train:
        train_images = load_images(arguments.mnist_dir, TRAIN_IMAGES)
    if arguments.matmul:
        results["matmul"] = measure_matmul(train_images.shape[0], train_images.shape[1],
                                           DEFAULT_HIDDEN[arguments.bits][0], arguments.repeats)
    if arguments.evaluation:
        results["evaluation"] = [
            measure_evaluation(train_images, arguments.bits, dtype, arguments.lbfgs_iter, arguments.repeats)
            for dtype in arguments.dtypes
        ]
    if arguments.lbfgs_overhead:
        n1, n2 = DEFAULT_HIDDEN[arguments.bits]
        sizes = [28 * 28, n1, n2, arguments.bits]
        n_parameters = sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(3))
        results["lbfgs_overhead"] = measure_lbfgs_overhead(n_parameters, 4 * arguments.lbfgs_iter)
    if arguments.train or arguments.subset or arguments.precision:
        test_images = load_images(arguments.mnist_dir, TEST_IMAGES)
    if arguments.train:
        results["train"] = train_full(train_images, test_images, arguments.bits, arguments.dtypes)
    if arguments.precision:
        results["precision"] = compare_precision(test_images, arguments.bits)
    if arguments.subset:
        results["subset"] = subset_check(test_images, arguments.bits, arguments.dtypes, arguments.seeds)

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("wrote %s", arguments.output)


if __name__ == "__main__":
    main()
