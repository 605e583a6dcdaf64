import numpy as np
import pytest

from bdnn.features.gabor import gabor_filter_bank
from bdnn.features.gist import GABOR_PADDING, gist, prefilter

N_FILTERS_320 = 20


@pytest.fixture(scope="module")
def random_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)


def horizontal_edge_image():
    """Dark top half, bright bottom half: one edge between rows 15 and 16."""
    image = np.zeros((32, 32), dtype=np.uint8)
    image[16:, :] = 200
    return image


def reference_gabor_block_means(filtered, bank, blocks, padding):
    """Compute the Gabor block means with full 2-D inverse FFTs and explicit block loops."""
    height, width = filtered.shape
    spectrum = np.fft.fft2(np.pad(filtered, padding, mode="symmetric"))
    row_edges = np.floor(np.linspace(0, height, blocks + 1)).astype(int)
    column_edges = np.floor(np.linspace(0, width, blocks + 1)).astype(int)

    features = []
    for transfer in bank:
        magnitude = np.abs(np.fft.ifft2(spectrum * transfer))[padding : padding + height, padding : padding + width]
        per_filter = np.zeros(blocks * blocks)
        for row in range(blocks):
            for column in range(blocks):
                window = magnitude[row_edges[row] : row_edges[row + 1], column_edges[column] : column_edges[column + 1]]
                per_filter[blocks * column + row] = window.mean()
        features.append(per_filter)
    return np.concatenate(features)


# Filter bank


def test_filter_bank_shape_and_count():
    bank = gabor_filter_bank(96, 96, (8, 8, 4))
    assert bank.shape == (N_FILTERS_320, 96, 96)
    assert bank.dtype == np.float64
    assert gabor_filter_bank(32, 40, (8, 8, 8, 8)).shape == (32, 32, 40)


def test_filter_bank_real_and_non_negative():
    bank = gabor_filter_bank(96, 96, (8, 8, 4))
    assert np.isrealobj(bank)
    assert bank.min() >= 0.0
    assert bank.max() <= 1.0


def test_filter_bank_is_cached_and_read_only():
    first = gabor_filter_bank(96, 96, (8, 8, 4))
    second = gabor_filter_bank(96, 96, [8, 8, 4])
    assert first is second
    assert not first.flags.writeable


def test_filter_bank_peaks_at_scale_frequency():
    size = 96
    bank = gabor_filter_bank(size, size, (8, 8, 4))
    frequencies = np.fft.fftfreq(size)
    first_filter_of_scale = {0: 0, 1: 8, 2: 16}
    for scale, index in first_filter_of_scale.items():
        row, column = np.unravel_index(np.argmax(bank[index]), bank[index].shape)
        assert frequencies[row] == 0.0
        assert abs(frequencies[column] - 0.3 / 1.85**scale) <= 1.0 / size


def test_filter_symmetric_about_orientation_axis():
    size = 96
    bank = gabor_filter_bank(size, size, (8, 8, 4))
    reflect = (-np.arange(size)) % size

    # Orientation 0 lies on the fx axis: symmetric under fy -> -fy.
    for index in (0, 8, 16):
        np.testing.assert_allclose(bank[index], bank[index][reflect, :], rtol=1e-12, atol=1e-300)

    # Orientation pi/2 (j = K/2) lies on the fy axis: symmetric under fx -> -fx.
    for index in (4, 12, 18):
        np.testing.assert_allclose(bank[index], bank[index][:, reflect], rtol=1e-12, atol=1e-300)


def test_reflected_filter_gives_same_magnitude():
    size = 32
    bank = gabor_filter_bank(size, size, (8, 8, 4))
    reflect = (-np.arange(size)) % size
    image = np.random.default_rng(1).normal(size=(size, size))
    spectrum = np.fft.fft2(image)

    for transfer in bank:
        reflected = transfer[np.ix_(reflect, reflect)]
        assert not np.allclose(transfer, reflected)

        response = np.fft.ifft2(spectrum * transfer)
        response_reflected = np.fft.ifft2(spectrum * reflected)
        assert np.abs(response.imag).max() > 1e-3
        np.testing.assert_allclose(np.abs(response), np.abs(response_reflected), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("orientations", [(), (8, 0), (8, 2.5)])
def test_filter_bank_rejects_bad_orientations(orientations):
    with pytest.raises(ValueError, match="orientations"):
        gabor_filter_bank(32, 32, orientations)


# Output shape and layout


def test_gist_320_and_512_shapes(random_images):
    features = gist(random_images)
    assert features.shape == (5, 320)
    assert features.dtype == np.float64

    features = gist(random_images, orientations=(8, 8, 8, 8))
    assert features.shape == (5, 512)


def test_gist_lear_shape(random_images):
    assert gist(random_images, variant="lear").shape == (5, 320)


def test_gist_empty_stack():
    assert gist(np.zeros((0, 32, 32, 3), dtype=np.uint8)).shape == (0, 320)


@pytest.mark.parametrize("variant", ["lmgist", "lear"])
def test_gabor_stage_matches_direct_computation(random_images, variant):
    grey = random_images.mean(axis=-1)
    if variant == "lmgist":
        grey = (grey - grey.min(axis=(1, 2), keepdims=True)) * 255.0 / np.ptp(grey, axis=(1, 2), keepdims=True)
    filtered = prefilter(grey)
    padding = GABOR_PADDING if variant == "lmgist" else 0
    bank = gabor_filter_bank(32 + 2 * padding, 32 + 2 * padding, (8, 8, 4))

    features = gist(random_images, variant=variant)

    for image_index in range(len(random_images)):
        expected = reference_gabor_block_means(filtered[image_index], bank, 4, padding)
        np.testing.assert_allclose(features[image_index], expected, rtol=1e-4, atol=1e-6)


def test_horizontal_edge_lights_middle_rows():
    features = gist(horizontal_edge_image()[np.newaxis]).reshape(N_FILTERS_320, 4, 4)
    # features[filter, column, row] under the column-major block order.
    rows_with_edge = features[:, :, 1:3].mean(axis=(1, 2))
    rows_without_edge = features[:, :, [0, 3]].mean(axis=(1, 2))

    # Orientation pi/2 responds to intensity changing down the rows.
    for vertical_filter in (4, 12, 18):
        assert rows_with_edge[vertical_filter] > 2 * rows_without_edge[vertical_filter]

    # At each scale the vertical-frequency filter beats the horizontal one.
    for horizontal_filter, vertical_filter in ((0, 4), (8, 12), (16, 18)):
        assert rows_with_edge[vertical_filter] > 5 * rows_with_edge[horizontal_filter]


def test_horizontal_edge_same_in_every_column():
    features = gist(horizontal_edge_image()[np.newaxis]).reshape(N_FILTERS_320, 4, 4)
    for column in range(1, 4):
        np.testing.assert_allclose(features[:, column, :], features[:, 0, :], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("variant", "wraps"), [("lear", True), ("lmgist", False)])
def test_top_pattern_wraps_when_circular(variant, wraps):
    rng = np.random.default_rng(8)
    image = np.full((1, 32, 32), 128, dtype=np.uint8)
    image[0, 0:8, :] = rng.integers(0, 256, size=(8, 32))  # row block 0 only

    features = gist(image, variant=variant).reshape(N_FILTERS_320, 4, 4)
    coarse = features[16:].mean(axis=(0, 1))  # mean over coarse filters and columns, per row block
    # Circular filtering makes the last row block a neighbour of the first.
    assert (coarse[3] > coarse[2]) == wraps


def test_corner_pattern_column_major_index():
    rng = np.random.default_rng(2)
    image = np.full((32, 32), 128, dtype=np.uint8)
    image[0:8, 24:32] = rng.integers(0, 256, size=(8, 8))  # row block 0, column block 3

    features = gist(image[np.newaxis]).reshape(N_FILTERS_320, 16)
    finest_scale = features[:8].sum(axis=0)
    assert np.argmax(finest_scale) == 4 * 3 + 0


# Invariance and equivalence


def test_lmgist_invariant_to_intensity_scaling():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 101, size=(2, 32, 32, 3), dtype=np.uint8)
    scaled = (image * 2).astype(np.uint8)
    np.testing.assert_allclose(gist(scaled), gist(image), rtol=1e-5, atol=1e-7)

    floating = image.astype(np.float64)
    np.testing.assert_allclose(gist(0.37 * floating), gist(image), rtol=1e-5, atol=1e-7)


def test_lmgist_invariant_to_intensity_offset():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 101, size=(2, 32, 32, 3), dtype=np.uint8)
    shifted = (image + 120).astype(np.uint8)
    np.testing.assert_allclose(gist(shifted), gist(image), rtol=1e-5, atol=1e-7)


def test_lear_not_invariant_to_intensity_scaling():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 101, size=(1, 32, 32), dtype=np.uint8)
    scaled = (image * 2).astype(np.uint8)
    assert not np.allclose(gist(scaled, variant="lear"), gist(image, variant="lear"), rtol=1e-3)


@pytest.mark.parametrize("variant", ["lmgist", "lear"])
def test_batch_equals_single_images(random_images, variant):
    batched = gist(random_images, variant=variant, batch_size=2)
    for index, image in enumerate(random_images):
        single = gist(image[np.newaxis], variant=variant)
        np.testing.assert_allclose(batched[index], single[0], rtol=1e-6, atol=1e-9)


def test_grey_input_equals_replicated_rgb():
    grey = np.random.default_rng(6).integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    np.testing.assert_allclose(gist(grey), gist(rgb), rtol=1e-12, atol=0)


def test_non_square_images():
    images = np.random.default_rng(7).integers(0, 256, size=(2, 24, 40), dtype=np.uint8)
    features = gist(images)
    assert features.shape == (2, 320)
    assert np.all(np.isfinite(features))


# Constant images


@pytest.mark.parametrize("variant", ["lmgist", "lear"])
@pytest.mark.parametrize("level", [0, 77, 255])
def test_constant_image_gives_zero_descriptor(variant, level):
    image = np.full((1, 32, 32, 3), level, dtype=np.uint8)
    features = gist(image, variant=variant)
    assert np.all(np.isfinite(features))
    assert np.all(features == 0.0)


def test_constant_image_leaves_neighbours_unchanged(random_images):
    stack = np.concatenate([random_images[:2], np.full((1, 32, 32, 3), 9, dtype=np.uint8)])
    features = gist(stack)
    np.testing.assert_allclose(features[:2], gist(random_images[:2]), rtol=1e-6, atol=1e-9)
    assert np.all(features[2] == 0.0)


# Input validation


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 32, 32, 4), dtype=np.uint8), "3 channels"),
        (np.zeros((32, 32), dtype=np.uint8), r"shape \(n, h, w, 3\) or \(n, h, w\)"),
        (np.zeros((1, 32, 32), dtype=np.int64), "dtype uint8"),
        (np.full((1, 32, 32), np.nan), "NaN"),
        (np.zeros((1, 3, 32), dtype=np.uint8), "at least blocks=4"),
    ],
)
def test_gist_rejects_bad_images(images, message):
    with pytest.raises(ValueError, match=message):
        gist(images)


def test_lear_rejects_negative_pixels():
    with pytest.raises(ValueError, match="non-negative"):
        gist(np.full((1, 32, 32), -2.0), variant="lear")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variant": "matlab"}, "variant must be one of"),
        ({"blocks": 0}, "blocks must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"prefilter_fc": -1.0}, "prefilter_fc must be a positive"),
        ({"prefilter_fc": "4"}, "prefilter_fc must be a positive"),
        ({"prefilter_fc": float("nan")}, "prefilter_fc must be a positive"),
        ({"orientations": (8, -1)}, "orientations"),
        ({"workers": 0}, "workers must be a non-zero integer"),
    ],
)
def test_gist_rejects_bad_options(random_images, options, message):
    with pytest.raises(ValueError, match=message):
        gist(random_images, **options)
