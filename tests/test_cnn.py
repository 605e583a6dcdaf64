import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bdnn.features import cnn
from bdnn.features.pca import apply_pca_projection, fit_pca_projection

RESIZE_SIZE = 72  # Small inputs keep the random AlexNet fast. AlexNet needs at least 63 pixels.
CROP_SIZE = 64


@pytest.fixture(scope="module")
def torch():
    pytest.importorskip("torchvision")
    import torch

    return torch


@pytest.fixture(scope="module")
def random_alexnet(torch):
    import torchvision

    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = torchvision.models.alexnet(weights=None)
    return network.eval()


@pytest.fixture(scope="module")
def alexnet_weights_file(torch, random_alexnet, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random_alexnet.pth"
    torch.save(random_alexnet.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def small_preprocessing(torch):
    return cnn.imagenet_preprocessing("alexnet", resize_size=RESIZE_SIZE, crop_size=CROP_SIZE)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def empty_hub_cache(torch, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


# Import without torch


def test_module_imports_without_torch():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        sys.modules["torchvision"] = None
        import numpy as np
        import bdnn.features.cnn as cnn
        try:
            cnn.extract_fc7(np.zeros((1, 8, 8, 3), dtype=np.uint8))
        except ImportError as error:
            assert "pip install bdnn[cnn]" in str(error), error
        else:
            raise AssertionError("extract_fc7 ran without torch")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# fc7 extraction


def test_fc7_shape_dtype_and_range(random_alexnet, small_preprocessing, images):
    features = cnn.compute_fc7(images, random_alexnet, small_preprocessing, batch_size=4)
    assert features.shape == (6, 4096)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert features.min() >= 0.0
    assert np.count_nonzero(features) > 0


def test_fc7_is_relu_after_second_linear(torch, random_alexnet, small_preprocessing, images):
    captured = []
    hook = random_alexnet.classifier[5].register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.inference_mode():
            batch = torch.from_numpy(images).permute(0, 3, 1, 2)
            random_alexnet(small_preprocessing(batch))
    finally:
        hook.remove()

    assert isinstance(random_alexnet.classifier[4], torch.nn.Linear)
    assert isinstance(random_alexnet.classifier[5], torch.nn.ReLU)
    features = cnn.compute_fc7(images, random_alexnet, small_preprocessing)
    np.testing.assert_allclose(features, captured[0].numpy(), rtol=1e-5, atol=1e-6)


def test_fc7_deterministic_on_cpu(random_alexnet, small_preprocessing, images):
    first = cnn.compute_fc7(images, random_alexnet, small_preprocessing, batch_size=3)
    second = cnn.compute_fc7(images, random_alexnet, small_preprocessing, batch_size=3)
    np.testing.assert_array_equal(first, second)


def test_fc7_independent_of_batch_size(random_alexnet, small_preprocessing, images):
    reference = cnn.compute_fc7(images, random_alexnet, small_preprocessing, batch_size=6)
    scale = float(np.abs(reference).max())
    for batch_size in (1, 4):
        features = cnn.compute_fc7(images, random_alexnet, small_preprocessing, batch_size=batch_size)
        np.testing.assert_allclose(features, reference, rtol=1e-4, atol=1e-5 * scale)


def test_vgg16_fc7_cut(torch):
    import torchvision

    with torch.device("meta"):
        network = torchvision.models.vgg16(weights=None)
        extractor = cnn.fc7_network(network)
        output = extractor(torch.empty(2, 3, 32, 32))

    head = extractor[-1]
    assert len(head) == 5
    assert isinstance(head[3], torch.nn.Linear)
    assert isinstance(head[4], torch.nn.ReLU)
    assert tuple(output.shape) == (2, 4096)


def test_fc7_cut_rejects_short_classifier(torch):
    network = torch.nn.Module()
    network.features = torch.nn.Identity()
    network.avgpool = torch.nn.Identity()
    network.classifier = torch.nn.Sequential(torch.nn.Linear(16, 10), torch.nn.ReLU())
    with pytest.raises(ValueError, match="at least 2 linear layers"):
        cnn.fc7_network(network)


def test_preprocessing_uses_imagenet_mean_and_std(torch):
    preprocessing = cnn.imagenet_preprocessing("vgg16")
    white = torch.full((1, 3, 40, 50), 255, dtype=torch.uint8)
    output = preprocessing(white)

    assert tuple(output.shape) == (1, 3, 224, 224)
    assert output.dtype == torch.float32
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(output.mean(dim=(0, 2, 3)).numpy(), expected, rtol=1e-5)


def test_preprocessing_rejects_crop_larger_than_resize(torch):
    with pytest.raises(ValueError, match="crop_size must not exceed resize_size=224"):
        cnn.imagenet_preprocessing("alexnet", resize_size=224, crop_size=256)


@pytest.mark.parametrize(
    ("bad_images", "message"),
    [
        (np.zeros((2, 32, 32), dtype=np.uint8), r"shape \(n, h, w, 3\)"),
        (np.zeros((2, 32, 32, 3), dtype=np.float32), "dtype uint8"),
    ],
)
def test_fc7_rejects_bad_images(random_alexnet, small_preprocessing, bad_images, message):
    with pytest.raises(ValueError, match=message):
        cnn.compute_fc7(bad_images, random_alexnet, small_preprocessing)


def test_fc7_rejects_bad_device(random_alexnet, small_preprocessing, images):
    with pytest.raises(ValueError, match="device must be"):
        cnn.compute_fc7(images, random_alexnet, small_preprocessing, device="tpu")


def test_fc7_cuda_unavailable_raises(torch, random_alexnet, small_preprocessing, images):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        cnn.compute_fc7(images, random_alexnet, small_preprocessing, device="cuda")


def test_unknown_network_rejected():
    with pytest.raises(ValueError, match="network must be one of"):
        cnn.extract_fc7(np.zeros((1, 8, 8, 3), dtype=np.uint8), name="resnet50")


# Weights


def test_official_weights_file_names(torch):
    assert cnn.official_weights_file_name("alexnet") == "alexnet-owt-7be5be79.pth"
    assert cnn.official_weights_file_name("vgg16") == "vgg16-397923af.pth"


def test_missing_weights_message_explains_fix(empty_hub_cache):
    with pytest.raises(FileNotFoundError) as caught:
        cnn.extract_fc7(np.zeros((1, 32, 32, 3), dtype=np.uint8), name="alexnet")
    message = str(caught.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(empty_hub_cache) in message
    assert "features.cnn_weights.alexnet" in message
    assert "never downloads" in message


def test_missing_explicit_weights_path(torch, tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        cnn.load_network("vgg16", weights=missing)


def test_weights_loaded_from_state_dict_path(random_alexnet, alexnet_weights_file, images, small_preprocessing):
    expected = cnn.compute_fc7(images, random_alexnet, small_preprocessing)
    features = cnn.extract_fc7(
        images, name="alexnet", weights=alexnet_weights_file, resize_size=RESIZE_SIZE, crop_size=CROP_SIZE
    )
    np.testing.assert_array_equal(features, expected)


def test_weights_found_in_hub_cache(torch, random_alexnet, alexnet_weights_file, empty_hub_cache, monkeypatch):
    digest = hashlib.sha256(alexnet_weights_file.read_bytes()).hexdigest()
    file_name = f"alexnet-test-{digest[:8]}.pth"
    monkeypatch.setattr(cnn, "official_weights_file_name", lambda name: file_name)
    empty_hub_cache.mkdir(parents=True)
    (empty_hub_cache / file_name).symlink_to(alexnet_weights_file)

    network = cnn.load_network("alexnet")
    for name, parameter in random_alexnet.state_dict().items():
        assert torch.equal(network.state_dict()[name], parameter), name


def test_corrupted_cached_weights_rejected(empty_hub_cache):
    empty_hub_cache.mkdir(parents=True)
    (empty_hub_cache / "alexnet-owt-7be5be79.pth").write_bytes(b"truncated download")
    with pytest.raises(ValueError, match="corrupted or truncated"):
        cnn.load_network("alexnet")


def test_wrong_state_dict_rejected(torch, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="is not a state_dict of torchvision's AlexNet"):
        cnn.load_network("alexnet", weights=path)


# PCA projection


@pytest.fixture(scope="module")
def correlated_features():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(12, 40))
    return (rng.normal(size=(300, 12)) @ mixing + rng.normal(scale=0.01, size=(300, 40)) + 3.0).astype(np.float32)


def test_pca_projection_shape_and_dtype(correlated_features):
    pca = fit_pca_projection(correlated_features, n_components=8)
    projected = apply_pca_projection(pca, correlated_features[:5])
    assert projected.shape == (5, 8)
    assert projected.dtype == np.float32


def test_pca_projection_matches_svd(correlated_features):
    pca = fit_pca_projection(correlated_features, n_components=6)
    centred = correlated_features.astype(np.float64) - correlated_features.mean(axis=0, dtype=np.float64)
    _, _, right_vectors = np.linalg.svd(centred, full_matrices=False)

    projected = apply_pca_projection(pca, correlated_features)
    expected = centred @ right_vectors[:6].T
    signs = np.sign(np.sum(projected * expected, axis=0))
    np.testing.assert_allclose(projected, expected * signs, rtol=1e-3, atol=1e-3)


def test_pca_projection_uses_training_mean_only(correlated_features):
    train, query = correlated_features[:200], correlated_features[200:] + 5.0
    pca = fit_pca_projection(train, n_components=4)
    np.testing.assert_allclose(pca.mean_, train.mean(axis=0, dtype=np.float64), rtol=1e-6)
    assert np.abs(apply_pca_projection(pca, train).mean(axis=0)).max() < 1e-3
    assert np.abs(apply_pca_projection(pca, query).mean(axis=0)).max() > 1e-2


def test_pca_projection_deterministic(correlated_features):
    first = apply_pca_projection(fit_pca_projection(correlated_features, 5), correlated_features)
    second = apply_pca_projection(fit_pca_projection(correlated_features, 5), correlated_features)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("n_components", [0, 41, 2.5])
def test_pca_rejects_bad_n_components(correlated_features, n_components):
    with pytest.raises(ValueError, match="n_components must be an integer from 1 to"):
        fit_pca_projection(correlated_features, n_components=n_components)


def test_pca_rejects_nan(correlated_features):
    bad = correlated_features.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="train_features contains 1 NaN"):
        fit_pca_projection(bad, n_components=3)


def test_pca_apply_rejects_wrong_width(correlated_features):
    pca = fit_pca_projection(correlated_features, n_components=3)
    with pytest.raises(ValueError, match="must have 40 columns"):
        apply_pca_projection(pca, correlated_features[:, :30])
