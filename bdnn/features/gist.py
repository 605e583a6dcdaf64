"""GIST scene descriptor (Oliva and Torralba) of grey-level images.

Two variants are implemented from the published descriptions of the two
reference implementations:

``"lmgist"``
    The LabelMe Matlab toolbox (``LMgist.m``). The grey image is stretched to
    0-255 per image, prefiltered, mirror-padded by 32 pixels on every side and
    filtered in the Fourier domain on a ``(h + 64) x (w + 64)`` grid. The
    magnitude is cropped back to ``h x w`` before the block means.
``"lear"``
    The LEAR C implementation. No 0-255 stretch, and the Gabor filtering is
    circular on an ``h x w`` grid with no padding.

Both variants share the rest. The grey image is the plain mean of R, G and B.
The prefilter takes ``log(1 + image)``, mirror-pads by 5 pixels and removes
the low frequencies with a Gaussian (whitening). It then divides by a local
standard deviation (local contrast normalisation) and crops back. Each Gabor
magnitude map is averaged over a ``blocks x blocks`` grid of blocks. Images
are used at their own size. Nothing is resized.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import scipy.fft
from tqdm import tqdm

from bdnn.features.gabor import gabor_filter_bank, validate_orientations
from bdnn.io import require_finite

logger = logging.getLogger(__name__)

VARIANTS = ("lmgist", "lear")
PREFILTER_PADDING = 5  # pixels, both variants
GABOR_PADDING = 32  # pixels, "lmgist" only
CONTRAST_FLOOR = 0.2  # added to the local standard deviation before dividing


def gist(
    images: np.ndarray,
    orientations: Sequence[int] = (8, 8, 4),
    blocks: int = 4,
    prefilter_fc: float = 4,
    variant: str = "lmgist",
    batch_size: int = 256,
    show_progress: bool = False,
    workers: int = 1,
) -> np.ndarray:
    """Compute GIST descriptors of a stack of images.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3) or (n, h, w)
        RGB or grey images, ``uint8`` or floating point on the 0-255 scale.
        RGB images are turned grey by the plain mean of the three channels.
        ``h`` and ``w`` must be at least ``blocks``.
    orientations : sequence of int
        Gabor orientations per scale, finest scale first. ``(8, 8, 4)`` gives
        GIST-320 with 4 x 4 blocks and ``(8, 8, 8, 8)`` gives GIST-512.
    blocks : int
        Number of blocks along each image axis. The block edges are
        ``floor(linspace(0, size, blocks + 1))`` on each axis.
    prefilter_fc : float
        Cut-off of the whitening Gaussian, in cycles per image. The Gaussian
        is ``exp(-(fx**2 + fy**2) / s**2)`` with ``s = prefilter_fc / sqrt(log 2)``
        and frequencies in cycles per padded image.
    variant : {"lmgist", "lear"}
        Reference implementation to follow (see the module docstring).
    batch_size : int
        Images processed per FFT batch. Peak memory grows linearly with it,
        at roughly ``batch_size * (h + 64) * (w + 64) * 32`` bytes for
        ``"lmgist"`` (an estimate from the work arrays).
    show_progress : bool
        Show a tqdm progress bar over batches.
    workers : int
        Threads used by ``scipy.fft``. ``-1`` uses every CPU.

    Returns
    -------
    ndarray of shape (n, blocks**2 * sum(orientations)), dtype float64
        Descriptors. The prefilter runs in float64 and the Gabor filtering
        in float32, so the relative precision is about 1e-6. Values are in
        filter-major order: all blocks of filter 0, then all blocks of
        filter 1, and so on, with filters ordered as in ``gabor_filter_bank``.
        Within a filter, the blocks run down the columns: block (row r,
        column c) has index ``blocks * c + r``.
        A constant image (every pixel equal) has no contrast to describe, so
        its descriptor is all zeros in both variants.

    Raises
    ------
    ValueError
        If an argument is out of range, the images have the wrong shape or
        dtype, contain NaN or infinity, or (for ``"lear"``) negative values.
        Also if a descriptor comes out non-finite, which finite input should
        never produce.
    """
    orientations = validate_orientations(orientations)
    _validate_options(blocks, prefilter_fc, variant, batch_size, workers)
    images = _validate_images(images, blocks, variant)

    n_images, height, width = images.shape[:3]
    n_features = blocks * blocks * sum(orientations)
    padding = GABOR_PADDING if variant == "lmgist" else 0
    bank = gabor_filter_bank(height + 2 * padding, width + 2 * padding, orientations)

    logger.info(
        "GIST (%s) started: %d images of %dx%d, orientations %s, %dx%d blocks, %d dimensions",
        variant, n_images, height, width, orientations, blocks, blocks, n_features,
    )
    started = time.perf_counter()

    descriptors = np.empty((n_images, n_features), dtype=np.float64)
    starts = range(0, n_images, batch_size)
    for start in tqdm(starts, desc=f"GIST {variant}", unit="batch", disable=not show_progress):
        grey = _grey_levels(images[start : start + batch_size])
        descriptors[start : start + len(grey)] = _describe_batch(grey, bank, blocks, prefilter_fc, variant, workers)

    require_finite(descriptors, "GIST descriptors")
    elapsed = time.perf_counter() - started
    rate = n_images / elapsed if elapsed > 0 else float("inf")
    logger.info("GIST (%s) finished: %d images in %.1f s (%.0f images/s)", variant, n_images, elapsed, rate)
    return descriptors


def _validate_options(blocks: int, prefilter_fc: float, variant: str, batch_size: int, workers: int) -> None:
    if isinstance(blocks, (bool, np.bool_)) or not isinstance(blocks, (int, np.integer)) or blocks < 1:
        raise ValueError(f"blocks must be a positive integer (blocks per image axis), got {blocks!r}")
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (images per batch), got {batch_size!r}")
    is_number = isinstance(prefilter_fc, (int, float, np.integer, np.floating)) and not isinstance(prefilter_fc, bool)
    if not is_number or not np.isfinite(prefilter_fc) or prefilter_fc <= 0:
        raise ValueError(f"prefilter_fc must be a positive finite number (cycles per image), got {prefilter_fc!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)) or workers == 0:
        raise ValueError(f"workers must be a non-zero integer (scipy.fft threads, -1 for every CPU), got {workers!r}")


def _validate_images(images: np.ndarray, blocks: int, variant: str) -> np.ndarray:
    """Check the shape, dtype and values of an image stack and return it as an array."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] != 3:
        raise ValueError(f"images of shape (n, h, w, channels) must have 3 channels (RGB), got shape {images.shape}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, h, w, 3) or (n, h, w), got shape {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must have dtype uint8 or a floating-point dtype on the 0-255 scale, got {images.dtype}")

    height, width = images.shape[1], images.shape[2]
    if height < blocks or width < blocks:
        raise ValueError(f"images must be at least blocks={blocks} pixels on each side, got {height}x{width}")

    if images.dtype != np.uint8:
        finite = np.isfinite(images)
        if not finite.all():
            bad = int(images.size - np.count_nonzero(finite))
            raise ValueError(f"images contains {bad} NaN or infinite values. GIST needs finite pixel values")
        if variant == "lear" and images.size and images.min() < 0:
            raise ValueError(
                f"images must be non-negative for variant 'lear' (it takes log(1 + image)), "
                f"got minimum {float(images.min())}"
            )

    return images


def _grey_levels(images: np.ndarray) -> np.ndarray:
    """Return grey levels as float64 (n, h, w), the plain mean of R, G and B for colour images."""
    if images.ndim == 4:
        return images.mean(axis=-1, dtype=np.float64)
    return images.astype(np.float64)


def _describe_batch(
    grey: np.ndarray,
    bank: np.ndarray,
    blocks: int,
    prefilter_fc: float,
    variant: str,
    workers: int,
) -> np.ndarray:
    """Compute the descriptors of one batch of grey images (n, h, w)."""
    lowest = grey.min(axis=(1, 2), keepdims=True)
    span = grey.max(axis=(1, 2), keepdims=True) - lowest
    constant = span[:, 0, 0] == 0

    if variant == "lmgist":
        # Stretch to 0-255. A constant image stays at 0 instead of dividing by zero.
        scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
        grey = (grey - lowest) * scale

    filtered = prefilter(grey, prefilter_fc, workers=workers)
    responses = _gabor_block_means(filtered, bank, blocks, variant, workers)

    # The prefilter leaves only rounding noise in a constant image, so its
    # descriptor is set to exactly zero.
    responses[constant] = 0.0
    return responses


def prefilter(grey: np.ndarray, fc: float = 4, workers: int = 1) -> np.ndarray:
    """Whiten and contrast-normalise grey images as the GIST prefilter does.

    The image becomes ``log(1 + image)`` and is mirror-padded by 5 pixels,
    then on the bottom and right to a square of even side ``n``. Whitening
    subtracts the Gaussian low-pass ``exp(-(fx**2 + fy**2) / s**2)``, where
    ``s = fc / sqrt(log 2)`` and frequencies are in cycles per ``n`` pixels.
    Local contrast normalisation divides by
    ``0.2 + sqrt(|low-pass of the squared result|)``. Finally the result is
    cropped back to the input size.

    Parameters
    ----------
    grey : ndarray of shape (n_images, h, w), dtype float64
        Grey images with values greater than -1.
    fc : float
        Cut-off of the Gaussian, in cycles per image.
    workers : int
        Threads used by ``scipy.fft``.

    Returns
    -------
    ndarray of shape (n_images, h, w), dtype float64
        Prefiltered images.
    """
    _, height, width = grey.shape
    image = np.log1p(grey)
    pad = PREFILTER_PADDING
    image = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")

    # Pad to an even-sided square so that one isotropic Gaussian fits both axes.
    side = max(image.shape[1], image.shape[2])
    side += side % 2
    image = np.pad(
        image, ((0, 0), (0, side - image.shape[1]), (0, side - image.shape[2])), mode="symmetric"
    )

    frequencies = np.fft.fftfreq(side) * side
    sigma = fc / np.sqrt(np.log(2.0))
    lowpass = np.exp(-(frequencies[:, np.newaxis] ** 2 + frequencies[np.newaxis, :] ** 2) / sigma**2)

    whitened = image - scipy.fft.ifft2(scipy.fft.fft2(image, workers=workers) * lowpass, workers=workers).real
    local_variance = np.abs(scipy.fft.ifft2(scipy.fft.fft2(whitened**2, workers=workers) * lowpass, workers=workers))
    normalised = whitened / (CONTRAST_FLOOR + np.sqrt(local_variance))

    return normalised[:, pad : pad + height, pad : pad + width]


def _gabor_block_means(filtered: np.ndarray, bank: np.ndarray, blocks: int, variant: str, workers: int) -> np.ndarray:
    """Filter each image with every Gabor filter and average the magnitudes per block."""
    n_images, height, width = filtered.shape
    padding = GABOR_PADDING if variant == "lmgist" else 0
    image = np.pad(filtered, ((0, 0), (padding, padding), (padding, padding)), mode="symmetric")

    # The toolbox filters in single precision too. This stage dominates the
    # run time, and float32 halves it.
    spectrum = scipy.fft.fft2(image.astype(np.float32), workers=workers)
    bank = bank.astype(np.float32)

    row_edges = np.floor(np.linspace(0, height, blocks + 1)).astype(int)
    column_edges = np.floor(np.linspace(0, width, blocks + 1)).astype(int)
    block_areas = np.outer(np.diff(row_edges), np.diff(column_edges))

    output = np.empty((n_images, len(bank), blocks * blocks), dtype=np.float64)
    for index, transfer in enumerate(bank):
        # Only the cropped window is needed, so invert along the columns, crop,
        # then invert along the rows. This saves a third of the work.
        response = scipy.fft.ifft(spectrum * transfer, axis=2, workers=workers)[:, :, padding : padding + width]
        response = scipy.fft.ifft(response, axis=1, workers=workers)[:, padding : padding + height, :]
        magnitude = np.abs(response).astype(np.float64)

        sums = np.add.reduceat(np.add.reduceat(magnitude, row_edges[:-1], axis=1), column_edges[:-1], axis=2)
        means = sums / block_areas
        # Column-major block order: index blocks * column + row.
        output[:, index, :] = means.transpose(0, 2, 1).reshape(n_images, -1)

    return output.reshape(n_images, -1)
