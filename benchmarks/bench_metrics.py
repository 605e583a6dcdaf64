"""Time mean average precision and K-NN ground truth on synthetic data.

Run one case per process, so that the peak resident memory reported belongs
to that case alone. Each run writes one Markdown table row to stdout:

    .venv/bin/python benchmarks/bench_metrics.py map --n-queries 10000 --n-database 1000000 --n-relevant 50
    .venv/bin/python benchmarks/bench_metrics.py ground-truth --n-queries 10000 --n-database 60000 --n-features 784 --k 50

Codes are uniform random bits and relevant lists are uniform random database
indices, which spreads the relevant items over every Hamming distance. This
is the slow case for the rank computation, which does one pass per distinct
distance among a query's relevant items.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

import numpy as np

from bdnn.evaluation.ground_truth import knn_ground_truth
from bdnn.evaluation.metrics import mean_average_precision

logger = logging.getLogger("bench_metrics")


def peak_rss_mib() -> float:
    """Return the peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_relevant_lists(rng: np.random.Generator, n_queries: int, n_database: int, n_relevant: int) -> np.ndarray:
    """Draw ``n_relevant`` distinct database indices per query, as int32 to halve the input's memory."""
    relevant = np.empty((n_queries, n_relevant), dtype=np.int32)
    for query in range(n_queries):
        relevant[query] = rng.choice(n_database, size=n_relevant, replace=False)
    return relevant


def run_map(arguments: argparse.Namespace) -> str:
    rng = np.random.default_rng(arguments.seed)
    logger.info("Generating %d x %d codes of %d bits", arguments.n_queries, arguments.n_database, arguments.n_bits)
    query_codes = rng.integers(0, 2, size=(arguments.n_queries, arguments.n_bits), dtype=np.uint8)
    database_codes = rng.integers(0, 2, size=(arguments.n_database, arguments.n_bits), dtype=np.uint8)
    relevant = random_relevant_lists(rng, arguments.n_queries, arguments.n_database, arguments.n_relevant)
    inputs_rss = peak_rss_mib()

    started = time.perf_counter()
    value = mean_average_precision(
        query_codes, database_codes, relevant=relevant, ap=arguments.ap, show_progress=arguments.progress
    )
    elapsed = time.perf_counter() - started

    return (
        f"| mean_average_precision ({arguments.ap}) | {arguments.n_queries:,} | {arguments.n_database:,} "
        f"| {arguments.n_bits} bits | K = {arguments.n_relevant:,} | {elapsed:.1f} | {peak_rss_mib():.0f} "
        f"| {inputs_rss:.0f} | mAP = {100 * value:.3f} |"
    )


def run_ground_truth(arguments: argparse.Namespace) -> str:
    rng = np.random.default_rng(arguments.seed)
    logger.info(
        "Generating %d queries and %d database items of %d uint8 features",
        arguments.n_queries,
        arguments.n_database,
        arguments.n_features,
    )
    queries = rng.integers(0, 256, size=(arguments.n_queries, arguments.n_features), dtype=np.uint8)
    database = rng.integers(0, 256, size=(arguments.n_database, arguments.n_features), dtype=np.uint8)
    inputs_rss = peak_rss_mib()

    started = time.perf_counter()
    neighbours = knn_ground_truth(queries, database, arguments.k, show_progress=arguments.progress)
    elapsed = time.perf_counter() - started

    return (
        f"| knn_ground_truth | {arguments.n_queries:,} | {arguments.n_database:,} "
        f"| {arguments.n_features} uint8 features | k = {arguments.k} | {elapsed:.1f} | {peak_rss_mib():.0f} "
        f"| {inputs_rss:.0f} | shape {neighbours.shape} |"
    )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--progress", action="store_true", help="show a progress bar over queries")
    commands = parser.add_subparsers(dest="command", required=True)

    map_parser = commands.add_parser("map", help="time mean_average_precision on random codes")
    map_parser.add_argument("--n-queries", type=int, default=10_000, help="number of query codes")
    map_parser.add_argument("--n-database", type=int, default=1_000_000, help="number of database codes")
    map_parser.add_argument("--n-bits", type=int, default=32, help="code length in bits")
    map_parser.add_argument("--n-relevant", type=int, default=50, help="relevant database items per query (K)")
    map_parser.add_argument("--ap", choices=("trapezoid", "standard"), default="trapezoid", help="AP form")
    map_parser.set_defaults(run=run_map)

    truth_parser = commands.add_parser("ground-truth", help="time knn_ground_truth on random uint8 features")
    truth_parser.add_argument("--n-queries", type=int, default=10_000, help="number of queries")
    truth_parser.add_argument("--n-database", type=int, default=60_000, help="number of database items")
    truth_parser.add_argument("--n-features", type=int, default=784, help="feature dimension")
    truth_parser.add_argument("--k", type=int, default=50, help="number of neighbours per query")
    truth_parser.set_defaults(run=run_ground_truth)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = parse_arguments(argv)
    row = arguments.run(arguments)
    sys.stdout.write(
        "| benchmark | queries | database | data | relevance | wall time (s) | peak RSS (MiB) "
        "| RSS before the timed call (MiB) | result |\n"
    )
    sys.stdout.write(row + "\n")


if __name__ == "__main__":
    main()
