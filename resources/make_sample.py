"""Build the bundled sample collection ``resources/sample/`` from scikit-image's own photographs.

Run from anywhere (needs scikit-image, Pillow and numpy)::

    python resources/make_sample.py

The sources are read straight from the files inside the installed scikit-image wheel
(``skimage/data/``); nothing is downloaded (pooch is never involved). Only photographs whose
licence scikit-image states as public domain / CC0 / "no known copyright restrictions" are used.

Layout: one subfolder per source photograph, named by a short lower-case label (the label used for
precision/recall evaluation), holding the original (JPEG q90, longest side at most 640 px) and
variants of the *same* content: horizontal flip, crop of ~70 % of the area, small rotation,
colour/brightness jitter, downscaled + re-compressed copy, and a grayscale copy (for grey sources,
a second crop at another position instead). The output is deterministic: fixed seeds, no
timestamps or metadata in the files. The script deletes and rebuilds ``sample/`` each run.
"""

from __future__ import annotations

import math
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

import skimage

OUT_DIR = Path(__file__).resolve().parent / "sample"
SKIMAGE_DATA = Path(skimage.__file__).resolve().parent / "data"

MAX_SIDE = 640  # longest side of the original copy
QUALITY = 90  # JPEG quality of the original
VARIANT_SIDE = 400  # longest side of the variants (keeps the folder small)
VARIANT_QUALITY = 85  # JPEG quality of the variants except "small"
SMALL_SIDE = 224  # longest side of the downscaled variant
SMALL_QUALITY = 40
CROP_AREA = 0.70  # fraction of the image area kept by a crop
BASE_SEED = 20240601


@dataclass(frozen=True)
class Source:
    """One scikit-image photograph and what scikit-image says about its origin and licence."""

    label: str  # subfolder name = evaluation label (lower-case ASCII)
    filename: str  # file inside skimage/data/
    title: str
    credit: str  # author / origin as stated by scikit-image
    licence: str  # licence as stated by scikit-image


# Licence texts are quoted from the docstrings of the matching skimage.data functions (0.26).
# Deliberately left out: moon, page, motorcycle_left/right (no licence stated in the wheel),
# text, horse, color, logo, chessboard, phantom, microaneurysms (synthetic / drawings, not
# photographs), cell (phase image, not a photograph).
SOURCES: tuple[Source, ...] = (
    Source(
        "astronaut",
        "astronaut.png",
        "Astronaut Eileen Collins (skimage.data.astronaut)",
        "NASA, from the NASA Great Images database (https://flic.kr/p/r9qvLn)",
        "No known copyright restrictions, released into the public domain.",
    ),
    Source(
        "cat",
        "chelsea.png",
        "Chelsea the cat (skimage.data.chelsea)",
        "Stefan van der Walt (photographer)",
        "No copyright restrictions. CC0 by the photographer.",
    ),
    Source(
        "coffee",
        "coffee.png",
        "Coffee cup, courtesy of Pikolo Espresso Bar (skimage.data.coffee)",
        "Rachel Michetti (photographer)",
        "No copyright restrictions. CC0 by the photographer.",
    ),
    Source(
        "rocket",
        "rocket.jpg",
        "Launch of DSCOVR on Falcon 9 (skimage.data.rocket)",
        "SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/)",
        "Released into the public domain by SpaceX.",
    ),
    Source(
        "cameraman",
        "camera.png",
        'Gray-level "camera" image (skimage.data.camera)',
        "Lav Varshney (photographer)",
        "No copyright restrictions. CC0 by the photographer.",
    ),
    Source(
        "coins",
        "coins.png",
        "Greek coins from Pompeii (skimage.data.coins)",
        "Brooklyn Museum Collection "
        "(https://www.brooklynmuseum.org/opencollection/archives/image/51611)",
        "No known copyright restrictions.",
    ),
    Source(
        "retina",
        "retina.jpg",
        "Human retina, fundus photograph of a normal left eye (skimage.data.retina)",
        "Mikael Haggstrom, via Wikimedia Commons "
        "(https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg)",
        "Creative Commons CC0 1.0 Universal Public Domain Dedication.",
    ),
    Source(
        "galaxies",
        "hubble_deep_field.jpg",
        "Hubble eXtreme Deep Field (skimage.data.hubble_deep_field)",
        "NASA, from HubbleSite "
        "(http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/)",
        "Captured by NASA; may be freely used in the public domain.",
    ),
    Source(
        "histology",
        "ihc.png",
        "Immunohistochemical staining of colonic glands (skimage.data.immunohistochemistry)",
        "Center for Microscopy And Molecular Imaging (CMMI)",
        "No known copyright restrictions.",
    ),
    Source(
        "clock",
        "clock_motion.png",
        "Motion-blurred wall clock (skimage.data.clock)",
        "Stefan van der Walt (photographer)",
        "Released into the public domain by the photographer.",
    ),
    Source(
        "grass",
        "grass.png",
        "Grass (skimage.data.grass)",
        "linolafett, DeviantArt (https://www.deviantart.com/linolafett/art/Grass-01-434853879); "
        "cropped and converted to grayscale by scikit-image",
        "Creative Commons CC0 License.",
    ),
    Source(
        "gravel",
        "gravel.png",
        "Gravel (skimage.data.gravel)",
        "CC0Textures (https://cc0textures.com/view.php?tex=Gravel04); "
        "rescaled, cropped and converted to grayscale by scikit-image",
        "Creative Commons CC0 License.",
    ),
    Source(
        "brick",
        "brick.png",
        "Brick wall (skimage.data.brick)",
        "CC0Textures (https://cc0textures.com/view.php?tex=Bricks25); "
        "perspective-corrected, rotated, cropped and scaled by scikit-image",
        "Creative Commons CC0 License.",
    ),
)


def load_source(src: Source) -> Image.Image:
    """Open a source file from the installed scikit-image and return it as RGB or L."""
    path = SKIMAGE_DATA / src.filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not in the installed scikit-image wheel")
    with Image.open(path) as im:
        im.load()
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB") if "A" not in im.mode else _flatten(im)
        else:
            im = im.copy()
    if im.mode == "RGB" and _is_grey(im):
        im = im.convert("L")
    return _fit(im, MAX_SIDE)


def _flatten(im: Image.Image) -> Image.Image:
    """Composite an image with transparency on white and return RGB."""
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def _is_grey(im: Image.Image) -> bool:
    a = np.asarray(im, dtype=np.int16)
    return bool(np.all(a[..., 0] == a[..., 1]) and np.all(a[..., 1] == a[..., 2]))


def _fit(im: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longest side is at most ``max_side``."""
    w, h = im.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return im
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def crop(im: Image.Image, rng: np.random.Generator, avoid: tuple[float, float] | None = None
         ) -> tuple[Image.Image, tuple[float, float]]:
    """Crop ~CROP_AREA of the area at a random position (away from ``avoid`` if given)."""
    w, h = im.size
    side = math.sqrt(CROP_AREA)
    cw, ch = round(w * side), round(h * side)
    for _ in range(100):
        fx, fy = float(rng.uniform()), float(rng.uniform())
        if avoid is None or abs(fx - avoid[0]) + abs(fy - avoid[1]) > 0.8:
            break
    x, y = round(fx * (w - cw)), round(fy * (h - ch))
    return im.crop((x, y, x + cw, y + ch)), (fx, fy)


def rotate(im: Image.Image, degrees: float) -> Image.Image:
    """Rotate by a few degrees and crop to the largest centred rectangle with no empty corners."""
    w, h = im.size
    t = math.radians(abs(degrees))
    s = min(w / (w * math.cos(t) + h * math.sin(t)), h / (w * math.sin(t) + h * math.cos(t)))
    rot = im.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    cw, ch = math.floor(w * s), math.floor(h * s)
    x, y = (w - cw) // 2, (h - ch) // 2
    return rot.crop((x, y, x + cw, y + ch))


def jitter(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Change brightness, contrast and (for colour images) saturation and hue."""
    brightness = float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.3) + 1)
    contrast = float(rng.uniform(0.8, 1.25))
    out = ImageEnhance.Brightness(im).enhance(brightness)
    out = ImageEnhance.Contrast(out).enhance(contrast)
    if im.mode == "RGB":
        out = ImageEnhance.Color(out).enhance(float(rng.uniform(0.6, 1.35)))
        hsv = np.asarray(out.convert("HSV")).copy()
        shift = int(rng.integers(6, 14)) * int(rng.choice([-1, 1]))
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
        out = Image.fromarray(hsv, "HSV").convert("RGB")
    return out


def save(im: Image.Image, path: Path, quality: int = QUALITY) -> None:
    """Write a baseline JPEG with no metadata (byte-for-byte reproducible for a given Pillow)."""
    im.save(path, "JPEG", quality=quality, optimize=True, progressive=False)


def build_source(src: Source, out_dir: Path) -> list[Path]:
    """Write the original and its variants for one source; return the written paths."""
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(src.label.encode("ascii"))])
    orig = load_source(src)
    folder = out_dir / src.label
    folder.mkdir(parents=True)

    base = _fit(orig, VARIANT_SIDE)
    crop1, pos1 = crop(base, rng)
    angle = float(rng.choice([-1, 1]) * rng.uniform(4, 8))
    variants: dict[str, tuple[Image.Image, int]] = {
        "original": (orig, QUALITY),
        "flip": (ImageOps.mirror(base), VARIANT_QUALITY),
        "crop": (crop1, VARIANT_QUALITY),
        "rotate": (rotate(base, angle), VARIANT_QUALITY),
        "jitter": (jitter(base, rng), VARIANT_QUALITY),
        "small": (_fit(orig, SMALL_SIDE), SMALL_QUALITY),
    }
    if orig.mode == "RGB":
        variants["gray"] = (base.convert("L"), VARIANT_QUALITY)
    else:
        variants["crop2"] = (crop(base, rng, avoid=pos1)[0], VARIANT_QUALITY)

    written = []
    for name, (im, quality) in variants.items():
        path = folder / f"{src.label}-{name}.jpg"
        save(im, path, quality)
        written.append(path)
    return written


def write_licence(out_dir: Path) -> None:
    """Write LICENSE.txt naming every source file with its author and licence."""
    lines = [
        "Explorer sample collection",
        "==========================",
        "",
        "Every image in this folder is derived (resized, flipped, cropped, rotated, colour-jittered,",
        "re-compressed or converted to grayscale) from a photograph bundled with scikit-image",
        f"{skimage.__version__} in its installed package folder skimage/data/. Authors and licences",
        "are as stated by scikit-image in the docstrings of the matching skimage.data functions.",
        "scikit-image itself is distributed under the BSD-3-Clause licence",
        "(Copyright 2009-2022 the scikit-image team).",
        "",
        "Built by resources/make_sample.py (deterministic; re-run it to rebuild this folder).",
        "",
    ]
    for src in SOURCES:
        lines += [
            f"{src.label}/",
            f"  source file: skimage/data/{src.filename}",
            f"  title:       {src.title}",
            f"  author:      {src.credit}",
            f"  licence:     {src.licence}",
            "",
        ]
    (out_dir / "LICENSE.txt").write_text("\n".join(lines), encoding="ascii", newline="\n")


def main() -> int:
    """Rebuild ``sample/`` from scratch and print a summary."""
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    files: list[Path] = []
    for src in SOURCES:
        files += build_source(src, OUT_DIR)
    write_licence(OUT_DIR)
    for p in files:
        p.relative_to(OUT_DIR).as_posix().encode("ascii")  # fail loudly on non-ASCII names
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"{len(SOURCES)} sources, {len(files)} images, {total / 1e6:.2f} MB in {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
