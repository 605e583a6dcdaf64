import numpy as np
import pytest

from bdnn.hashing.network import (
    IDENTITY,
    SIGMOID,
    Layer,
    cross_product,
    eigenvector_layers,
    encode_bits,
    forward,
    layer_arrays,
    pack,
    top_eigenvectors,
    unpack_layers,
)


@pytest.fixture
def inputs():
    return np.random.default_rng(0).random((50, 8))


def test_pack_unpack_round_trip(inputs):
    layers = eigenvector_layers(inputs, [6, 4, 3], [SIGMOID, SIGMOID, IDENTITY], np.dtype(np.float64))
    vector = pack(layer_arrays(layers))
    assert vector.shape == (8 * 6 + 6 + 6 * 4 + 4 + 4 * 3 + 3,)
    restored = unpack_layers(vector, layers, np.dtype(np.float32))
    for original, copy in zip(layers, restored):
        assert copy.weight.dtype == np.float32
        assert copy.activation == original.activation
        np.testing.assert_array_equal(copy.weight, original.weight.astype(np.float32))
        np.testing.assert_array_equal(copy.bias, original.bias.astype(np.float32))


def test_unpack_rejects_wrong_length(inputs):
    layers = eigenvector_layers(inputs, [3], [IDENTITY], np.dtype(np.float64))
    with pytest.raises(ValueError, match="parameter vector"):
        unpack_layers(np.zeros(5), layers, np.dtype(np.float64))


def test_eigenvector_layers_use_top_eigenvectors(inputs):
    layers = eigenvector_layers(inputs, [5, 2], [SIGMOID, IDENTITY], np.dtype(np.float64))
    moment = inputs.T @ inputs / inputs.shape[0]
    weight = layers[0].weight
    eigenvalues = np.sort(np.linalg.eigvalsh(moment))[::-1]
    np.testing.assert_allclose(weight @ weight.T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(np.diag(weight @ moment @ weight.T), eigenvalues[:5], rtol=1e-10)
    assert np.all(layers[0].bias == 0)

    # The second layer is initialised from the first layer's sigmoid output.
    hidden = forward(layers[:1], inputs)[0]
    second = top_eigenvectors(hidden.T @ hidden / inputs.shape[0], 2)
    np.testing.assert_allclose(layers[1].weight, second, atol=1e-10)


def test_eigenvector_signs_fixed():
    rows = top_eigenvectors(np.diag([3.0, 2.0, 1.0]), 2)
    np.testing.assert_array_equal(rows, [[1, 0, 0], [0, 1, 0]])


def test_eigenvector_layer_too_wide(inputs):
    with pytest.raises(ValueError, match="at most 8 units"):
        eigenvector_layers(inputs, [9], [SIGMOID], np.dtype(np.float64))


def test_cross_product_matches_matmul():
    rng = np.random.default_rng(1)
    A = rng.random((20000, 3)).astype(np.float32)
    B = rng.random((20000, 4))
    expected = A.astype(np.float64).T @ B
    np.testing.assert_allclose(cross_product(A, B), expected, rtol=1e-12)


def test_forward_shapes_and_activations(inputs):
    layers = eigenvector_layers(inputs, [6, 4, 3], [SIGMOID, SIGMOID, IDENTITY], np.dtype(np.float64))
    outputs = forward(layers, inputs)
    assert [output.shape for output in outputs] == [(50, 6), (50, 4), (50, 3)]
    assert np.all((outputs[0] > 0) & (outputs[0] < 1))
    expected = outputs[1] @ layers[2].weight.T + layers[2].bias
    np.testing.assert_allclose(outputs[2], expected)


def test_encode_bits_threshold_at_zero():
    layer = Layer(np.eye(2), np.zeros(2), IDENTITY)
    codes = encode_bits([layer], np.array([[0.0, -1e-300], [2.0, -3.0]]))
    np.testing.assert_array_equal(codes, [[1, 0], [1, 0]])
    assert codes.dtype == np.uint8


def test_encode_bits_rejects_broken_weights(inputs):
    layer = Layer(np.full((2, 8), np.nan), np.zeros(2), IDENTITY)
    with pytest.raises(FloatingPointError, match="NaN"):
        encode_bits([layer], inputs)


def test_layer_rejects_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        Layer(np.eye(2), np.zeros(2), "relu")
