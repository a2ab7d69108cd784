"""A representation as one torch module: uint8 pixels in, pooled features out.

Preprocessing and pooling live inside the module, so its exported ONNX graph is the whole
representation and every backend takes the same input (the decoder's uint8 (N, H, W, 3) array)
and gives the same output. Only the final L2 normalisation stays outside, in float64 numpy
(backbones.LoadedModel), where it is the same code for every backend. FeatureMapNetwork is the same
module stopped before pooling, for explaining a similarity (explain.py).

Imports torch at module level: import this module only where a network is really built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .graphs import FEATURES, MAP

if TYPE_CHECKING:
    from .backbones import ModelSpec


class FeatureNetwork(torch.nn.Module):
    scale: torch.Tensor  # buffers (register_buffer), declared for the type checker
    shift: torch.Tensor

    def __init__(self, trunk: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                 pooling: str):
        super().__init__()
        self.trunk = trunk
        std_t, mean_t = torch.tensor(std).view(1, 3, 1, 1), torch.tensor(mean).view(1, 3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add
        self.register_buffer("scale", 1 / (255 * std_t))
        self.register_buffer("shift", mean_t / std_t)
        self.pooling = pooling

    def feature_map(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) maps of (N, H, W, 3) uint8 pixels, before pooling (explain.py uses them)."""
        # NHWC uint8 -> an NCHW view with channels_last strides: no copy, the layout the
        # convolutions are fastest in.
        return self.trunk(pixels.permute(0, 3, 1, 2).float() * self.scale - self.shift)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        feature_map = self.feature_map(pixels).float()
        if self.pooling == "gem":  # generalised mean, p=3: leans towards strong activations
            return feature_map.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
        return feature_map.mean(dim=(2, 3))  # global average pooling


class FeatureMapNetwork(torch.nn.Module):
    """A FeatureNetwork that stops before pooling: (N, H, W, 3) uint8 -> (N, C, H, W) maps."""

    def __init__(self, network: FeatureNetwork):
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.feature_map(pixels).float().contiguous()


def build_feature_network(spec: "ModelSpec", weights: Path, output: str = FEATURES) -> torch.nn.Module:
    """The representation's FeatureNetwork, or (output=MAP) its FeatureMapNetwork."""
    if output not in (FEATURES, MAP):
        raise ValueError(f"a network outputs {FEATURES!r} or {MAP!r}, not {output!r}")
    pre = spec.preprocessing
    network = FeatureNetwork(spec.build(weights), pre.mean, pre.std, spec.pooling)
    network = network.eval().to(memory_format=torch.channels_last)
    return network if output == FEATURES else FeatureMapNetwork(network).eval()
