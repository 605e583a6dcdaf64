"""Fully connected encoder shared by UH-BDNN and SH-BDNN.

The encoder maps inputs to the real-valued code layer H through sigmoid hidden
layers and a linear code layer. Samples are rows: an input batch has shape
(m, n_features) and a layer with weight ``W`` of shape (n_out, n_in) and bias
``c`` computes ``activation(A @ W.T + c)``.

This module contains the forward and backward passes, the packing of all weights
into the one float64 vector that ``scipy.optimize`` works on, the layer-wise
eigenvector initialisation and the binarisation rule (bit 1 where H >= 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

SIGMOID = "sigmoid"
IDENTITY = "identity"
ACTIVATIONS = (SIGMOID, IDENTITY)

# Rows that ``cross_product`` converts to float64 at a time.
_CHUNK_ROWS = 8192


@dataclass
class Layer:
    """One fully connected layer: ``activation(A @ weight.T + bias)``.

    Attributes
    ----------
    weight : ndarray of shape (n_out, n_in)
    bias : ndarray of shape (n_out,)
    activation : {"sigmoid", "identity"}
    """

    weight: np.ndarray
    bias: np.ndarray
    activation: str

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(
                f"a layer needs weight of shape (n_out, n_in) and bias of shape (n_out,), "
                f"got {self.weight.shape} and {self.bias.shape}"
            )

    def copy(self) -> "Layer":
        """Return a deep copy."""
        return Layer(self.weight.copy(), self.bias.copy(), self.activation)


def forward(layers: list[Layer], X: np.ndarray) -> list[np.ndarray]:
    """Run the encoder and return the output of every layer.

    Parameters
    ----------
    layers : list of Layer
    X : ndarray of shape (m, n_in)
        Inputs, in the dtype of the layers.

    Returns
    -------
    list of ndarray
        ``outputs[l]`` has shape (m, n_out of layer l); the last one is H.
    """
    outputs = []
    current = X
    for layer in layers:
        current = current @ layer.weight.T
        current += layer.bias
        if layer.activation == SIGMOID:
            expit(current, out=current)
        outputs.append(current)
    return outputs


def backward(
    layers: list[Layer], X: np.ndarray, outputs: list[np.ndarray], output_gradient: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Back-propagate the gradient of a loss with respect to the last layer's output.

    Parameters
    ----------
    layers : list of Layer
    X : ndarray of shape (m, n_in)
        The inputs given to ``forward``.
    outputs : list of ndarray
        The return value of ``forward(layers, X)``.
    output_gradient : ndarray of shape (m, n_out of the last layer)
        dJ/dH.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(dJ/dW, dJ/dc)`` for every layer, in layer order. Weight decay is not
        included: the objective adds it.
    """
    gradients: list[tuple[np.ndarray, np.ndarray]] = []
    delta = output_gradient
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if layer.activation == SIGMOID:
            # The sigmoid's derivative is a (1 - a), computed in one buffer.
            derivative = 1 - outputs[index]
            derivative *= outputs[index]
            derivative *= delta
            delta = derivative
        layer_input = X if index == 0 else outputs[index - 1]

        # (A^T delta)^T equals delta^T A. For 60,000 x 784 inputs OpenBLAS 0.3.31 ran both at the same
        # speed on an idle machine, but this form 1.5 to 2.7 times faster on 2 cores shared with other
        # jobs (benchmarks/bench_uh_bdnn.py --matmul).
        gradients.append(((layer_input.T @ delta).T, delta.sum(axis=0)))

        # The first layer's input gradient is never needed, and it would cost as much as a layer-1 product.
        if index > 0:
            delta = delta @ layer.weight
    gradients.reverse()
    return gradients


def pack(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate arrays into one flat float64 vector (the order of ``arrays``, C order within each)."""
    return np.concatenate([np.ravel(array).astype(np.float64) for array in arrays])


def layer_arrays(layers: list[Layer]) -> list[np.ndarray]:
    """Return ``[W1, c1, W2, c2, ...]``, the order in which ``pack`` lays out a network."""
    return [array for layer in layers for array in (layer.weight, layer.bias)]


def unpack_layers(vector: np.ndarray, template: list[Layer], dtype: np.dtype) -> list[Layer]:
    """Build layers shaped like ``template`` from a vector laid out by ``pack(layer_arrays(template))``."""
    expected = sum(layer.weight.size + layer.bias.size for layer in template)
    if vector.shape != (expected,):
        raise ValueError(f"parameter vector must have shape ({expected},), got {vector.shape}")
    layers = []
    start = 0
    for layer in template:
        weight = vector[start : start + layer.weight.size].reshape(layer.weight.shape).astype(dtype)
        start += layer.weight.size
        bias = vector[start : start + layer.bias.size].astype(dtype)
        start += layer.bias.size
        layers.append(Layer(weight, bias, layer.activation))
    return layers


def cross_product(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Return ``A.T @ B`` accumulated in float64, converting the rows of both in chunks.

    The chunks keep the float64 copies small when ``A`` or ``B`` is a large float32 array.
    """
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows, got {A.shape[0]} and {B.shape[0]}")
    product = np.zeros((A.shape[1], B.shape[1]))
    for start in range(0, A.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        product += A[rows].astype(np.float64).T @ B[rows].astype(np.float64)
    return product


def top_eigenvectors(matrix: np.ndarray, count: int) -> np.ndarray:
    """Return the eigenvectors of the ``count`` largest eigenvalues of a symmetric matrix, as rows.

    The sign of each eigenvector is fixed so that its largest-magnitude entry is
    positive, so the result does not depend on the LAPACK build.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    order = np.argsort(-eigenvalues, kind="stable")[:count]
    rows = eigenvectors[:, order].T
    pivots = np.argmax(np.abs(rows), axis=1)
    signs = np.sign(rows[np.arange(count), pivots])
    return rows * signs[:, None]


def eigenvector_layers(X: np.ndarray, sizes: list[int], activations: list[str], dtype: np.dtype) -> list[Layer]:
    """Initialise an encoder layer by layer from the eigenvectors of each layer's input.

    Layer l gets as weight rows the top ``sizes[l]`` eigenvectors of the
    uncentred second moment ``(1/m) A.T @ A`` of its input ``A`` (``X`` for the
    first layer, the previous initialised layer's output after that), and a zero bias.

    Parameters
    ----------
    X : ndarray of shape (m, n_features)
    sizes : list of int
        Output size of every layer. Each must not exceed the size of its input.
    activations : list of str
        Activation of every layer, ``"sigmoid"`` or ``"identity"``.
    dtype : numpy dtype
        dtype of the returned weights.

    Returns
    -------
    list of Layer
    """
    if len(sizes) != len(activations):
        raise ValueError(f"sizes and activations must have the same length, got {len(sizes)} and {len(activations)}")
    layers = []
    current = X
    for size, activation in zip(sizes, activations):
        if size > current.shape[1]:
            raise ValueError(
                f"a layer of {size} units cannot be initialised from the top eigenvectors of a "
                f"{current.shape[1]}-dimensional input; use at most {current.shape[1]} units"
            )
        weight = top_eigenvectors(cross_product(current, current) / current.shape[0], size).astype(dtype)
        layer = Layer(weight, np.zeros(size, dtype=dtype), activation)
        layers.append(layer)
        current = forward([layer], current)[0]
    return layers


def encode_bits(layers: list[Layer], X: np.ndarray) -> np.ndarray:
    """Return the binary codes of ``X``: uint8 of shape (m, L), bit 1 where H >= 0.

    Raises
    ------
    FloatingPointError
        If the code layer contains NaN or infinity, which would otherwise turn silently into bits.
    """
    H = forward(layers, X)[-1]
    if not np.all(np.isfinite(H)):
        raise FloatingPointError(
            "the code layer H contains NaN or infinity, so the network weights are invalid; retrain or reload the model"
        )
    return (H >= 0).astype(np.uint8)
