"""Gabor filter bank of the GIST descriptor, defined in the Fourier domain.

The bank follows the parameterisation of the LabelMe GIST toolbox (Oliva and
Torralba). Scales are numbered ``s = 0, 1, ...`` from fine to coarse and scale
``s`` has ``orientations[s]`` filters. Filter ``j`` of scale ``s`` with
``K = orientations[s]`` orientations is a real, non-negative Gaussian on
log-polar-like coordinates of the frequency plane::

    G(f, t) = exp(-3.5 * (f / f_s - 1)**2 - 2 * pi * b_K * d(t, theta_j)**2)

    f_s     = 0.3 / 1.85**s          peak radial frequency, cycles per pixel
    b_K     = 16 * K**2 / 32**2      angular sharpness, grows with K
    theta_j = pi * j / K             orientation, j = 0 .. K - 1
    d(t, theta_j)                    ``t + theta_j`` wrapped into [-pi, pi]

Here ``f`` is the radial frequency in cycles per pixel and ``t`` the angle of
the frequency vector ``(fx, fy)``, with ``fx`` along image columns and ``fy``
along image rows (downwards). The constant 3.5 is 10 times the radial
bandwidth constant 0.35 of the toolbox. Each scale's centre frequency is a
factor 1.85 below the previous one, and the finest sits at 0.3 cycles per
pixel. The angular width shrinks as the number of orientations grows, so the
filters of one scale tile the half plane of directions.

Each filter has a single lobe, centred on the direction ``-theta_j``, and no
mirror lobe at ``pi - theta_j``. Its spatial kernel is therefore complex (a
quadrature pair), and the magnitude of the response of a real image is the
local energy at that scale and orientation. Reflecting a filter through the
origin of the frequency grid (``k -> -k mod n`` on both axes) leaves that
magnitude unchanged, which is why orientations in ``[0, pi)`` cover every
direction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

RADIAL_BANDWIDTH = 0.35
FINEST_PEAK_FREQUENCY = 0.3  # cycles per pixel
SCALE_RATIO = 1.85


def validate_orientations(orientations: Sequence[int]) -> tuple[int, ...]:
    """Check a per-scale orientation count and return it as a tuple of ints.

    Parameters
    ----------
    orientations : sequence of int
        Number of orientations at each scale, finest scale first.

    Returns
    -------
    tuple of int
        The same counts as Python ints.

    Raises
    ------
    ValueError
        If the sequence is empty or a count is not a positive integer.
    """
    counts = tuple(orientations)
    if not counts:
        raise ValueError("orientations must list at least one scale, got an empty sequence")
    for count in counts:
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(
                f"orientations must contain positive integers (orientations per scale), got {orientations!r}"
            )
    return tuple(int(count) for count in counts)


def gabor_filter_bank(height: int, width: int, orientations: Sequence[int] = (8, 8, 4)) -> np.ndarray:
    """Build the GIST Gabor transfer functions on an FFT frequency grid.

    The bank is built once per ``(height, width, orientations)`` and cached.
    The returned array is read-only and shared between callers.

    Parameters
    ----------
    height, width : int
        Size of the FFT grid, in pixels. For square grids the frequencies match
        the toolbox exactly. For other grids each axis is normalised by its own
        length, so ``f`` stays in cycles per pixel.
    orientations : sequence of int
        Orientations per scale, finest scale first. ``(8, 8, 4)`` gives the 20
        filters of GIST-320 and ``(8, 8, 8, 8)`` the 32 filters of GIST-512.

    Returns
    -------
    ndarray of shape (sum(orientations), height, width), dtype float64
        Transfer functions in unshifted FFT order (the zero frequency at
        index ``[0, 0]``, as ``numpy.fft.fftfreq`` lays out the grid), ordered
        scale by scale and, within a scale, by orientation index ``j``.

    Raises
    ------
    ValueError
        If ``height`` or ``width`` is not a positive integer, or
        ``orientations`` is invalid.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer (pixels), got {value!r}")
    return _cached_filter_bank(int(height), int(width), validate_orientations(orientations))


@functools.lru_cache(maxsize=16)
def _cached_filter_bank(height: int, width: int, orientations: tuple[int, ...]) -> np.ndarray:
    logger.debug("building Gabor filter bank: grid %dx%d, orientations %s", height, width, orientations)

    # Frequencies in cycles per pixel, zero frequency at index 0.
    fy = np.fft.fftfreq(height)[:, np.newaxis]
    fx = np.fft.fftfreq(width)[np.newaxis, :]
    radius = np.hypot(fx, fy)
    angle = np.arctan2(fy, fx)

    filters = []
    for scale, count in enumerate(orientations):
        peak_frequency = FINEST_PEAK_FREQUENCY / SCALE_RATIO**scale
        angular_sharpness = 16.0 * count**2 / 32.0**2
        radial_term = -10.0 * RADIAL_BANDWIDTH * (radius / peak_frequency - 1.0) ** 2

        for index in range(count):
            # angle is in (-pi, pi] and the offset in [0, pi), so one wrap suffices.
            distance = angle + np.pi * index / count
            distance = np.where(distance > np.pi, distance - 2 * np.pi, distance)
            filters.append(np.exp(radial_term - 2.0 * angular_sharpness * np.pi * distance**2))

    bank = np.stack(filters)
    bank.setflags(write=False)
    return bank
