"""Time GIST descriptors on real CIFAR-10 images and extrapolate to the full set.

Reads batch files of the CIFAR-10 python version (``cifar-10-batches-py``),
computes GIST for up to ``--n-images`` of their images, and writes one
Markdown table row to stdout:

    .venv/bin/python benchmarks/bench_gist.py --data-dir data/raw/cifar10/cifar-10-batches-py --n-images 10000

The extrapolation to all 60,000 CIFAR-10 images assumes constant throughput,
because every batch of same-size images costs the same.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np

from bdnn.features.gist import VARIANTS, gist

logger = logging.getLogger("bench_gist")

CIFAR10_TOTAL_IMAGES = 60_000
CIFAR10_SIDE = 32
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "raw" / "cifar10" / "cifar-10-batches-py"


def peak_rss_mib() -> float:
    """Return the peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_cifar10_images(data_dir: Path, batch_names: list[str], n_images: int) -> np.ndarray:
    """Read up to ``n_images`` images from CIFAR-10 python batch files.

    Parameters
    ----------
    data_dir : pathlib.Path
        The ``cifar-10-batches-py`` folder.
    batch_names : list of str
        Batch files to read, in order.
    n_images : int
        Number of images to keep.

    Returns
    -------
    ndarray of shape (n_images, 32, 32, 3), dtype uint8
        RGB images, fewer if the files contain fewer.

    Raises
    ------
    FileNotFoundError
        If a batch file is missing.
    ValueError
        If a file does not contain a (n, 3072) uint8 ``b"data"`` array.
    """
    chunks = []
    total = 0
    for name in batch_names:
        path = data_dir / name
        if not path.is_file():
            raise FileNotFoundError(
                f"CIFAR-10 batch file not found: {path}. Pass --data-dir with the cifar-10-batches-py folder"
            )
        # The CIFAR-10 python version is a pickle, so read only files you trust.
        with open(path, "rb") as stream:
            batch = pickle.load(stream, encoding="bytes")
        data = np.asarray(batch[b"data"])
        if data.ndim != 2 or data.shape[1] != 3 * CIFAR10_SIDE**2 or data.dtype != np.uint8:
            raise ValueError(f"{path} must contain a (n, 3072) uint8 b'data' array, got {data.shape} {data.dtype}")

        # Each row contains the R, G and B planes in turn, each a row-major 32 x 32 image.
        chunks.append(data.reshape(-1, 3, CIFAR10_SIDE, CIFAR10_SIDE).transpose(0, 2, 3, 1))
        total += len(data)
        if total >= n_images:
            break
    return np.concatenate(chunks)[:n_images]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder of the CIFAR-10 python batch files (default: data/raw/cifar10/cifar-10-batches-py in the repository)",
    )
    parser.add_argument(
        "--batches", nargs="+", default=["data_batch_1", "data_batch_2"], help="batch files to read, in order"
    )
    parser.add_argument("--n-images", type=int, default=10_000, help="number of images to describe")
    parser.add_argument("--variant", choices=VARIANTS, default="lmgist", help="GIST reference implementation")
    parser.add_argument(
        "--orientations", type=int, nargs="+", default=[8, 8, 4], help="orientations per scale (8 8 4: GIST-320)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per FFT batch")
    parser.add_argument("--workers", type=int, default=1, help="scipy.fft threads")
    parser.add_argument("--progress", action="store_true", help="show a progress bar over batches")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = parse_arguments(argv)
    if arguments.n_images < 1:
        raise SystemExit(f"--n-images must be a positive integer, got {arguments.n_images}")

    images = load_cifar10_images(arguments.data_dir, arguments.batches, arguments.n_images)
    logger.info("Loaded %d CIFAR-10 images from %s", len(images), arguments.data_dir)

    started = time.perf_counter()
    features = gist(
        images,
        orientations=arguments.orientations,
        variant=arguments.variant,
        batch_size=arguments.batch_size,
        show_progress=arguments.progress,
        workers=arguments.workers,
    )
    elapsed = time.perf_counter() - started

    rate = len(images) / elapsed
    full_set_minutes = CIFAR10_TOTAL_IMAGES / rate / 60
    sys.stdout.write(
        "| variant | dimensions | images | batch size | scipy.fft workers | wall time (s) | images/s "
        "| 60,000 images, extrapolated (min) | peak RSS (MiB) |\n"
    )
    sys.stdout.write(
        f"| {arguments.variant} | {features.shape[1]} | {len(images):,} | {arguments.batch_size} | {arguments.workers} "
        f"| {elapsed:.1f} | {rate:.0f} | {full_set_minutes:.1f} | {peak_rss_mib():.0f} |\n"
    )


if __name__ == "__main__":
    main()
