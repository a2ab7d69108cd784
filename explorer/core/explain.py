"""Why are two images similar: each feature-map position's share of the cosine similarity.

With F the C x H x W feature map of an image, g its pooled vector and q a unit query vector,
average pooling (g = mean of F over positions) gives exactly

    cos(g, q) = sum over (i, j) of <F[:, i, j], q> / (H * W * |g|)

and GeM (g_c = (mean F_c^p)^(1/p), p = 3) gives, since g_c = g_c^(1-p) * mean F_c^p,

    cos(g, q) = sum over (i, j) of sum_c q_c g_c^(1-p) F[c, i, j]^p / (H * W * |g|)

so the per-position terms form a grid that sums to the similarity the app shows (up to the
backends' float error, about 1e-5). No gradients. The map comes from the representation's map
runner on any backend (backends.create_runner with output=MAP: the same network, stopped before
pooling), on the image as the model sees it (the whole image squashed to the input size), for
the few images being explained.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .backends import AUTO, Runner, create_runner
from .graphs import MAP
from .images import ImageError, load_rgb, model_input
from .backbones import LoadedModel, fetch_weights, get_spec

GEM_P = 3.0  # torch_network.FeatureNetwork's GeM exponent


@dataclass(frozen=True)
class Explanation:
    similarity: float  # the sum of `grid`: the cosine of the image's vector and the query
    grid: np.ndarray  # (H, W) float32, each feature-map position's share of `similarity`
    pooling: str  # "gap" or "gem"


@functools.lru_cache(maxsize=4)
def map_runner(model: str, backend: str = AUTO) -> Runner:
    """The representation's map runner on `backend`, started once per model and backend (a
    second or two; on first use of an ONNX backend, its map graph is exported: ~10 s)."""
    spec = get_spec(model)
    weights, sha256 = fetch_weights(spec)
    return create_runner(spec, weights, sha256, backend, output=MAP)


def feature_maps(model: str, pixels: np.ndarray, backend: str = AUTO) -> np.ndarray:
    """(N, C, H, W) float32 feature maps of model-input pixels ((N, S, S, 3) uint8)."""
    return np.asarray(map_runner(model, backend)(pixels), np.float32)


def page_feature_maps(model: str, sources: list, backend: str = AUTO) -> list[np.ndarray | None]:
    """(C, H, W) float32 feature maps of several images in one forward pass; None for an image
    that cannot be read (vanished, damaged), which costs the others nothing."""
    size = get_spec(model).preprocessing.size
    pixels: dict[int, np.ndarray] = {}
    for i, source in enumerate(sources):
        try:
            pixels[i] = model_input(load_rgb(source, min_side=size), size)
        except ImageError:
            continue
    maps = dict(zip(pixels, feature_maps(model, np.stack(list(pixels.values())), backend))) if pixels else {}
    return [maps.get(i) for i in range(len(sources))]


def feature_map(model: str, source, backend: str = AUTO) -> np.ndarray:
    """(C, H, W) float64 feature map of one image (path, bytes or file) under `model`."""
    size = get_spec(model).preprocessing.size
    pixels = model_input(load_rgb(source, min_side=size), size)[None]
    return feature_maps(model, pixels, backend)[0].astype(np.float64)


def contributions(fmap: np.ndarray, query: np.ndarray, pooling: str = "gap") -> Explanation:
    """The exact decomposition of cos(pooled(fmap), query) over positions (module docstring)."""
    q = np.asarray(query, np.float64)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    channels, height, width = fmap.shape
    flat = fmap.reshape(channels, height * width)
    if pooling == "gem":
        powered = np.clip(flat, 1e-6, None) ** GEM_P
        pooled = powered.mean(axis=1) ** (1 / GEM_P)
        terms = (q * pooled ** (1 - GEM_P)) @ powered
    else:
        pooled = flat.mean(axis=1)
        terms = q @ flat
    grid = terms / (height * width * max(np.linalg.norm(pooled), 1e-12))
    grid = grid.reshape(height, width).astype(np.float32)
    return Explanation(float(grid.astype(np.float64).sum()), grid, pooling)


def parse_region(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' as fractions of the image's width and height (0 <= x0 < x1 <= 1, ...)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"a region is x0,y0,x1,y1 (fractions of width and height), not {text!r}") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"a region needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, not {text!r}")
    return x0, y0, x1, y1


def region_cells(shape: tuple[int, int], region: tuple[float, float, float, float]) -> np.ndarray:
    """(H, W) mask of the feature-map cells whose centres lie in the region (at least the one
    nearest its centre, for a region smaller than a cell)."""
    height, width = shape
    x0, y0, x1, y1 = region
    rows = (np.arange(height) + 0.5) / height
    cols = (np.arange(width) + 0.5) / width
    mask = ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]
    if not mask.any():
        mask[min(int((y0 + y1) / 2 * height), height - 1), min(int((x0 + x1) / 2 * width), width - 1)] = True
    return mask


def pool_region(fmap: np.ndarray, region: tuple[float, float, float, float], pooling: str = "gap") -> np.ndarray:
    """The unit vector of only the feature-map cells of `region`, pooled as the model pools."""
    cells = fmap[:, region_cells(fmap.shape[1:], region)]
    pooled = (np.clip(cells, 1e-6, None) ** GEM_P).mean(axis=1) ** (1 / GEM_P) if pooling == "gem" \
        else cells.mean(axis=1)
    return (pooled / max(np.linalg.norm(pooled), 1e-12)).astype(np.float32)


def crop_region(source, region: tuple[float, float, float, float]) -> Image.Image:
    """The region of the upright image, cropped (to embed it as an image of its own)."""
    image = load_rgb(source)
    x0, y0, x1, y1 = region
    box = (int(x0 * image.width), int(y0 * image.height),
           max(int(round(x1 * image.width)), int(x0 * image.width) + 1),
           max(int(round(y1 * image.height)), int(y0 * image.height) + 1))
    return image.crop(box)


REGION_METHODS = ("crop", "pool")


def region_vector(model: LoadedModel, source, region: tuple[float, float, float, float],
                  method: str = "crop") -> np.ndarray:
    """The unit vector of a region of an image: the crop embedded as an image of its own
    ("crop"), or the model's feature-map cells of the region pooled ("pool")."""
    if method == "pool":
        fmap = feature_map(model.spec.name, source, model.backend)
        return pool_region(fmap, region, model.spec.pooling)
    crop = crop_region(source, region)
    return model.embed(model_input(crop, model.input_size)[None])[0]


def explain(model: str, source, query: np.ndarray, backend: str = AUTO) -> Explanation:
    """Each position's share of the similarity of image `source` to the unit `query` vector."""
    return contributions(feature_map(model, source, backend), query, get_spec(model).pooling)


# --- pictures -----------------------------------------------------------------------------

# A perceptually ordered map from dark blue (least) to yellow (most), viridis-like.
_ANCHORS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float64)


def colour(values: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours of values in [0, 1]."""
    x = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(x).astype(int).clip(0, len(_ANCHORS) - 2)
    t = (x - low)[..., None]
    return ((1 - t) * _ANCHORS[low] + t * _ANCHORS[low + 1]).astype(np.uint8)


def heatmap(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The grid upsampled smoothly to `size` (width, height), scaled to [0, 1] between its
    smallest and largest share."""
    low, high = float(grid.min()), float(grid.max())
    scaled = (grid - low) / (high - low) if high > low else np.zeros_like(grid)
    up = Image.fromarray(scaled.astype(np.float32), mode="F").resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(up), 0, 1)


def overlay_png(source, explanation: Explanation, out: Path, opacity: float = 0.55,
                max_side: int = 512) -> Path:
    """`overlay` written to `out` (the format from its suffix)."""
    overlay(source, explanation, opacity, max_side).save(out)
    return Path(out)


def overlay(source, explanation: Explanation, opacity: float = 0.55, max_side: int = 512) -> Image.Image:
    """The image with its heatmap over it and a colour bar below (least to most share)."""
    image = load_rgb(source)
    image.thumbnail((max_side, max_side))
    heat = colour(heatmap(explanation.grid, image.size))
    blended = Image.blend(image, Image.fromarray(heat), opacity)
    bar_height, pad = 14, 4
    canvas = Image.new("RGB", (blended.width, blended.height + bar_height + 18 + 2 * pad), "white")
    canvas.paste(blended, (0, 0))
    bar = colour(np.linspace(0, 1, blended.width))[None].repeat(bar_height, axis=0)
    canvas.paste(Image.fromarray(bar), (0, blended.height + pad))
    draw = ImageDraw.Draw(canvas)
    grid = explanation.grid
    y = blended.height + pad + bar_height + 2
    draw.text((2, y), f"{grid.min():+.4f}", fill="black")
    label = f"similarity {explanation.similarity:.4f} = sum of {grid.size} shares"
    draw.text((max(blended.width // 2 - 3 * len(label), 2), y), label, fill="black")
    high = f"{grid.max():+.4f}"
    draw.text((blended.width - 6 * len(high) - 2, y), high, fill="black")
    return canvas
