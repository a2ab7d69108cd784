"""Plain helpers shared by tests (fixtures live in conftest.py)."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from explorer.resources import sample_folder


def copy_sample(dest: Path, labels: list[str] | None = None) -> Path:
    """Copy (some label folders of) the bundled sample photos into `dest`."""
    source = sample_folder()
    dest.mkdir(parents=True, exist_ok=True)
    for label_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        if labels is None or label_dir.name in labels:
            shutil.copytree(label_dir, dest / label_dir.name)
    return dest


def add_bad_and_odd_files(folder: Path) -> dict[str, str | None]:
    """Write every awkward input the issue lists; returns path -> expected skip reason (None: embedded)."""
    cat = Image.open(folder / "cat" / "cat-original.jpg").convert("RGB")
    odd = folder / "odd"
    odd.mkdir()
    expected: dict[str, str | None] = {}

    (odd / "empty.jpg").write_bytes(b"")
    expected["odd/empty.jpg"] = "empty"
    jpeg = io.BytesIO()
    cat.save(jpeg, "JPEG", quality=90)
    (odd / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    expected["odd/truncated.jpg"] = "truncated"
    (odd / "notes.jpg").write_text("this is a text file, not a photo")
    expected["odd/notes.jpg"] = "not an image"
    Image.new("1", (30000, 30000)).save(odd / "bomb.png")  # ~100 KB file, 900 Mpixel image
    expected["odd/bomb.png"] = "too large"

    deep = (np.asarray(cat.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(odd / "sixteen-bit.png")
    expected["odd/sixteen-bit.png"] = None
    cat.convert("CMYK").save(odd / "cmyk.jpg", quality=90)
    expected["odd/cmyk.jpg"] = None
    palette = cat.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(odd / "palette-transparent.png", transparency=0)
    expected["odd/palette-transparent.png"] = None
    frames = [cat, cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(odd / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    expected["odd/animated.gif"] = None
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored rotated, display rotated 90 degrees clockwise
    cat.transpose(Image.Transpose.ROTATE_90).save(odd / "exif-rotated.jpg", quality=95, exif=exif)
    cat.save(odd / "upright.jpg", quality=95)
    expected["odd/exif-rotated.jpg"] = expected["odd/upright.jpg"] = None
    cat.save(odd / "chat-été-猫.webp")
    expected["odd/chat-été-猫.webp"] = None
    for fmt, ext in [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif")]:
        cat.resize((160, 120)).save(odd / f"small.{ext}", fmt)
        expected[f"odd/small.{ext}"] = None

    os.symlink("loop-b.jpg", odd / "loop-a.jpg")
    os.symlink("loop-a.jpg", odd / "loop-b.jpg")
    expected["odd/loop-a.jpg"] = expected["odd/loop-b.jpg"] = "symlink"
    os.symlink("..", odd / "parent-link")  # a directory loop: must not recurse forever
    expected["odd/parent-link"] = "loop"
    return expected
