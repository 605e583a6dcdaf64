"""Fully connected (fc7) features of torchvision ImageNet networks.

Two networks are supported: AlexNet and VGG-16, both with the
``IMAGENET1K_V1`` weights of torchvision. Their fc7 feature is the output of
the second fully connected layer of the classifier after its ReLU, a
4096-dimensional non-negative vector. Dropout layers are inactive because the
network runs in evaluation mode.

torch and torchvision are an optional dependency (the ``cnn`` extra). They are
imported inside the functions, so this module imports without them.

Weights are never downloaded. They come from a ``weights`` path to a
state_dict file or from the torch hub cache, where torchvision itself would
store them (``<torch.hub.get_dir()>/checkpoints/<official file name>``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

FC7_DIMENSION = 4096
DEFAULT_RESIZE_SIZE = 256  # torchvision's IMAGENET1K_V1 transforms
DEFAULT_CROP_SIZE = 224


@dataclass(frozen=True)
class NetworkSpec:
    """A supported torchvision network: its builder and its weights enum."""

    builder: str
    weights_enum: str
    display_name: str


NETWORKS = {
    "alexnet": NetworkSpec(builder="alexnet", weights_enum="AlexNet_Weights", display_name="AlexNet"),
    "vgg16": NetworkSpec(builder="vgg16", weights_enum="VGG16_Weights", display_name="VGG-16"),
}


def _require_torchvision():
    try:
        import torch
        import torchvision
    except ImportError as error:
        raise ImportError(
            "CNN features need torch and torchvision, which are not installed. "
            "Install them with `pip install bdnn[cnn]`"
        ) from error
    return torch, torchvision


def _network_spec(name: str) -> NetworkSpec:
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {tuple(NETWORKS)}, got {name!r}")
    return NETWORKS[name]


def _imagenet_weights(name: str):
    """Return torchvision's ``IMAGENET1K_V1`` weights entry (metadata only, nothing is downloaded)."""
    _, torchvision = _require_torchvision()
    return getattr(torchvision.models, _network_spec(name).weights_enum).IMAGENET1K_V1


def official_weights_file_name(name: str) -> str:
    """Return the file name torchvision uses for a network's ImageNet weights.

    Parameters
    ----------
    name : {"alexnet", "vgg16"}
        Network name.

    Returns
    -------
    str
        For example ``"alexnet-owt-7be5be79.pth"`` (torchvision 0.29).

    Raises
    ------
    ValueError
        If ``name`` is not a supported network.
    ImportError
        If torchvision is not installed.
    """
    return _imagenet_weights(name).url.rsplit("/", 1)[-1]


def resolve_weights_path(name: str, weights: str | os.PathLike | None = None) -> Path:
    """Find the state_dict file of a network's weights without downloading.

    Parameters
    ----------
    name : {"alexnet", "vgg16"}
        Network name.
    weights : path-like, optional
        A state_dict file given by the user. When omitted, the torch hub
        cache ``<torch.hub.get_dir()>/checkpoints/<official file name>`` is
        used.

    Returns
    -------
    pathlib.Path
        An existing weights file.

    Raises
    ------
    FileNotFoundError
        If ``weights`` is given but missing, or if it is omitted and the cache
        has no file. The message names the file to obtain and where to put it.
    ValueError
        If a file carrying the official name fails the SHA-256 prefix in that
        name (a truncated or corrupted copy).
    """
    torch, _ = _require_torchvision()
    spec = _network_spec(name)
    file_name = official_weights_file_name(name)

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{spec.display_name} weights file not found: {path}. Set the weights path to an existing "
                f"state_dict file, for example torchvision's {file_name}"
            )
    else:
        path = Path(torch.hub.get_dir()) / "checkpoints" / file_name
        if not path.is_file():
            url = _imagenet_weights(name).url
            raise FileNotFoundError(
                f"{spec.display_name} ImageNet weights not found: no weights path was given and {path} does not "
                f"exist. bdnn never downloads weights. Download {url} on a machine with internet access, "
                f"then either copy {file_name} to {path.parent}/ or set the weights path to the file "
                f"(config: features.cnn_weights.{name})"
            )

    if path.name == file_name:
        _check_hash_prefix(path)
    else:
        logger.info("%s weights %s: no checksum known for this file name, not verified", spec.display_name, path)
    return path


def _check_hash_prefix(path: Path) -> None:
    """Compare a torchvision weights file with the SHA-256 prefix in its name."""
    match = re.search(r"-([0-9a-f]{8,})\.pth$", path.name)
    if match is None:
        return
    expected = match.group(1)
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(expected):
        raise ValueError(
            f"weights file {path} is corrupted or truncated: its SHA-256 starts with {digest.hexdigest()[:8]}, "
            f"expected {expected}. Download it again"
        )
    logger.info("weights file %s matches the SHA-256 prefix %s", path, expected)


def load_network(name: str, weights: str | os.PathLike | None = None) -> "torch.nn.Module":
    """Build a torchvision network and load its weights from disk.

    Parameters
    ----------
    name : {"alexnet", "vgg16"}
        Network name.
    weights : path-like, optional
        State_dict file. See ``resolve_weights_path`` for the default.

    Returns
    -------
    torch.nn.Module
        The whole network (with the 1000-class layer) on the CPU, in
        evaluation mode.

    Raises
    ------
    FileNotFoundError
        If no weights file is found (see ``resolve_weights_path``).
    ValueError
        If the file does not contain a state_dict of this architecture.
    """
    torch, torchvision = _require_torchvision()
    spec = _network_spec(name)
    path = resolve_weights_path(name, weights)

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} must contain a state_dict (a dict of tensors), got {type(state).__name__}")

    # Building on the meta device skips the random initialisation, which the
    # state_dict replaces anyway.
    with torch.device("meta"):
        network = getattr(torchvision.models, spec.builder)(weights=None)
    try:
        network.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise ValueError(f"{path} is not a state_dict of torchvision's {spec.display_name}: {error}") from error

    logger.info("loaded %s weights from %s", spec.display_name, path)
    return network.eval()


def fc7_network(network: "torch.nn.Module") -> "torch.nn.Module":
    """Cut an AlexNet or VGG network after the ReLU of its second fully connected layer.

    Parameters
    ----------
    network : torch.nn.Module
        A torchvision AlexNet or VGG (with ``features``, ``avgpool`` and a
        sequential ``classifier``).

    Returns
    -------
    torch.nn.Sequential
        ``features``, ``avgpool``, flatten and the classifier up to and
        including that ReLU, in evaluation mode. It shares its parameters
        with ``network``.

    Raises
    ------
    ValueError
        If the classifier has fewer than two linear layers or the second one
        is not followed by a ReLU.
    """
    torch, _ = _require_torchvision()
    classifier = network.classifier
    linear_positions = [index for index, layer in enumerate(classifier) if isinstance(layer, torch.nn.Linear)]
    if len(linear_positions) < 2:
        raise ValueError(f"network classifier must have at least 2 linear layers, got {len(linear_positions)}")
    relu_position = linear_positions[1] + 1
    if relu_position >= len(classifier) or not isinstance(classifier[relu_position], torch.nn.ReLU):
        raise ValueError("network classifier must have a ReLU right after its second linear layer (fc7)")

    head = classifier[: relu_position + 1]
    return torch.nn.Sequential(network.features, network.avgpool, torch.nn.Flatten(1), head).eval()


def imagenet_preprocessing(
    name: str, resize_size: int = DEFAULT_RESIZE_SIZE, crop_size: int = DEFAULT_CROP_SIZE
) -> "torch.nn.Module":
    """Return torchvision's preprocessing for a network's ImageNet weights.

    It resizes the shorter side to ``resize_size`` (bilinear, antialiased),
    crops the centre ``crop_size`` square, scales to [0, 1] and normalises
    with the ImageNet mean (0.485, 0.456, 0.406) and standard deviation
    (0.229, 0.224, 0.225). The defaults are those of torchvision's
    ``IMAGENET1K_V1`` transforms.

    Parameters
    ----------
    name : {"alexnet", "vgg16"}
        Network name.
    resize_size, crop_size : int
        Sizes in pixels. ``resize_size == crop_size`` keeps the whole image.

    Returns
    -------
    torch.nn.Module
        A transform of uint8 tensors of shape (n, 3, h, w) to float32 tensors
        of shape (n, 3, crop_size, crop_size).

    Raises
    ------
    ValueError
        If a size is not a positive integer or ``crop_size > resize_size``.
    """
    for argument, value in (("resize_size", resize_size), ("crop_size", crop_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{argument} must be a positive integer (pixels), got {value!r}")
    if crop_size > resize_size:
        raise ValueError(f"crop_size must not exceed resize_size={resize_size}, got {crop_size}")
    return _imagenet_weights(name).transforms(resize_size=int(resize_size), crop_size=int(crop_size))


def compute_fc7(
    images: np.ndarray,
    network: "torch.nn.Module",
    preprocessing: "torch.nn.Module",
    batch_size: int = 64,
    device: str = "cpu",
    show_progress: bool = False,
) -> np.ndarray:
    """Run images through a network's fc7 layer in batches.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3), dtype uint8
        RGB images.
    network : torch.nn.Module
        A torchvision AlexNet or VGG; ``fc7_network`` cuts it. Its
        parameters are moved to ``device``.
    preprocessing : torch.nn.Module
        Transform of uint8 (n, 3, h, w) tensors, usually from
        ``imagenet_preprocessing``.
    batch_size : int
        Images per forward pass. On the CPU, features agree across batch
        sizes to float32 rounding (about 1e-6 relative), not bit for bit.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.
    show_progress : bool
        Show a tqdm progress bar over batches.

    Returns
    -------
    ndarray of shape (n, 4096), dtype float32
        fc7 features: outputs of the second fully connected layer after its
        ReLU, so non-negative.

    Raises
    ------
    ValueError
        If the images or an option are invalid, or the network output
        contains NaN.
    RuntimeError
        If ``device`` is a CUDA device and CUDA is not available.
    """
    torch, _ = _require_torchvision()
    images = _validate_rgb_images(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (images per batch), got {batch_size!r}")
    target = _torch_device(device)

    extractor = fc7_network(network).to(target)
    features = np.empty((len(images), FC7_DIMENSION), dtype=np.float32)
    started = time.perf_counter()

    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc="fc7", unit="batch", disable=not show_progress):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).permute(0, 3, 1, 2)
            inputs = preprocessing(batch.to(target))
            outputs = extractor(inputs).float().cpu().numpy()
            if outputs.shape[1] != FC7_DIMENSION:
                raise ValueError(f"fc7 output must have {FC7_DIMENSION} dimensions, got shape {outputs.shape}")
            features[start : start + len(outputs)] = outputs

    if not np.all(np.isfinite(features)):
        raise ValueError("fc7 features contain NaN or infinite values. Check the network weights")
    elapsed = time.perf_counter() - started
    logger.info("fc7 features of %d images on %s in %.1f s", len(images), target, elapsed)
    return features


def extract_fc7(
    images: np.ndarray,
    name: str = "alexnet",
    weights: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    show_progress: bool = False,
    resize_size: int = DEFAULT_RESIZE_SIZE,
    crop_size: int = DEFAULT_CROP_SIZE,
) -> np.ndarray:
    """Compute ImageNet fc7 features of AlexNet or VGG-16.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3), dtype uint8
        RGB images of any size. They are resized as torchvision's
        ``IMAGENET1K_V1`` transforms do (see ``imagenet_preprocessing``).
    name : {"alexnet", "vgg16"}
        Network.
    weights : path-like, optional
        State_dict file. Default: the torch hub cache (see
        ``resolve_weights_path``). Nothing is downloaded.
    batch_size : int
        Images per forward pass.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.
    show_progress : bool
        Show a tqdm progress bar over batches.
    resize_size, crop_size : int
        Preprocessing sizes in pixels (torchvision's defaults: 256 and 224).

    Returns
    -------
    ndarray of shape (n, 4096), dtype float32
        fc7 features (second fully connected layer, after its ReLU).

    Raises
    ------
    FileNotFoundError
        If no weights file is found. The message explains how to obtain it.
    ValueError
        If the images, the options or the weights file are invalid.
    RuntimeError
        If ``device`` is a CUDA device and CUDA is not available.
    """
    _network_spec(name)
    images = _validate_rgb_images(images)
    preprocessing = imagenet_preprocessing(name, resize_size, crop_size)
    network = load_network(name, weights)
    logger.info("fc7 of %s started: %d images, batch size %d, device %s", name, len(images), batch_size, device)
    return compute_fc7(images, network, preprocessing, batch_size=batch_size, device=device, show_progress=show_progress)


def _validate_rgb_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, h, w, 3) (RGB), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must have dtype uint8, got {images.dtype}")
    return images


def _torch_device(device: str) -> "torch.device":
    torch, _ = _require_torchvision()
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available. Use device='cpu'")
    return torch.device(device)
