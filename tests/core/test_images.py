"""Tests for explorer.core.images: every image is made here with Pillow, nothing is mocked."""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from explorer.core import images
from explorer.core.images import (
    MAX_PIXELS,
    DecodedImage,
    ImageError,
    decode_for_index,
    image_extensions,
    load_rgb,
    model_input,
    register_optional_plugins,
    thumbnail_jpeg,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# ---- helpers


def save(img: Image.Image, path: Path, **params: object) -> Path:
    img.save(path, **params)
    return path


def near(pixel: tuple[int, ...] | np.ndarray, expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True))


def quadrants(width: int, height: int) -> Image.Image:
    """Four differently coloured quadrants: any rotation or flip changes the picture."""
    img = Image.new("RGB", (width, height), WHITE)
    img.paste(RED, (0, 0, width // 2, height // 2))
    img.paste(GREEN, (width // 2, 0, width, height // 2))
    img.paste(BLUE, (0, height // 2, width // 2, height))
    return img


def noisy(width: int, height: int, seed: int = 0) -> Image.Image:
    """Incompressible content, so a JPEG of it has plenty of entropy-coded data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bilevel_png(width: int, height: int, *, truncate_idat: bool = False) -> bytes:
    """A valid all-black 1-bit PNG of any size, built by hand so it costs almost no memory.

    With ``truncate_idat`` the pixel data is cut short: if the decoder ever got
    as far as the pixels, the error would be about corrupt data, not size.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(1)  # level 1: ~5x faster than 9, still tiny for zeros
    rows_per_chunk = max(1, 4_000_000 // len(row))
    parts = []
    for start in range(0, height, rows_per_chunk):
        parts.append(compressor.compress(row * min(rows_per_chunk, height - start)))
    parts.append(compressor.flush())
    idat = b"".join(parts)
    if truncate_idat:
        idat = idat[: len(idat) // 10]
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---- plugins / extensions


def test_image_extensions_base_set() -> None:
    exts = image_extensions()
    assert {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"} <= exts
    assert all(ext == ext.lower() and ext.startswith(".") for ext in exts)
    assert exts <= {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
    }


def test_register_optional_plugins_is_idempotent() -> None:
    register_optional_plugins()
    register_optional_plugins()
    first = image_extensions()
    register_optional_plugins()
    assert image_extensions() == first


@pytest.mark.skipif(importlib.util.find_spec("pillow_heif") is None, reason="pillow_heif missing")
def test_heic_offered_and_decoded(tmp_path: Path) -> None:
    assert {".heic", ".heif"} <= image_extensions()
    try:
        path = save(Image.new("RGB", (64, 48), RED), tmp_path / "red.heic", format="HEIF")
    except Exception as exc:  # noqa: BLE001  (a libheif build without an encoder)
        pytest.skip(f"cannot encode HEIF here: {exc}")
    img = load_rgb(path)
    assert img.size == (64, 48)
    assert near(img.getpixel((10, 10)), RED)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_offered_and_decoded(tmp_path: Path) -> None:
    assert ".avif" in image_extensions()
    path = save(Image.new("RGB", (64, 48), BLUE), tmp_path / "blue.avif")
    img = load_rgb(path)
    assert img.size == (64, 48)
    assert near(img.getpixel((10, 10)), BLUE)


# ---- formats and modes


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("a.jpg", {}),
        ("a.jpeg", {"quality": 95}),
        ("a.png", {}),
        ("a.webp", {"lossless": True}),
        ("a.bmp", {}),
        ("a.gif", {}),
        ("a.tif", {}),
        ("a.tiff", {"compression": "tiff_lzw"}),
    ],
)
def test_common_formats_decode(tmp_path: Path, name: str, params: dict[str, object]) -> None:
    path = save(quadrants(64, 48), tmp_path / name, **params)
    img = load_rgb(path)
    assert img.mode == "RGB"
    assert img.size == (64, 48)
    assert near(img.getpixel((5, 5)), RED)
    assert near(img.getpixel((60, 5)), GREEN)
    assert near(img.getpixel((5, 40)), BLUE)
    assert near(img.getpixel((60, 40)), WHITE)


def test_sources_path_str_bytes_and_stream(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (20, 10), GREEN), tmp_path / "g.png")
    data = path.read_bytes()
    stream = io.BytesIO(data)
    for source in (path, str(path), data, stream):
        img = load_rgb(source)
        assert img.size == (20, 10)
        assert img.getpixel((3, 3)) == GREEN
    assert not stream.closed  # the caller's stream is the caller's to close


def test_returned_image_is_independent_of_the_file(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (20, 10), GREEN), tmp_path / "g.png")
    img = load_rgb(path)
    path.unlink()
    assert img.copy().getpixel((0, 0)) == GREEN  # fully loaded, not lazily tied to the file


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB"])
def test_opaque_modes_via_tiff(tmp_path: Path, mode: str) -> None:
    source = Image.new("RGB", (16, 8), WHITE)
    path = save(source.convert(mode), tmp_path / f"{mode}.tif")
    assert Image.open(path).mode == mode  # the file really holds that mode
    img = load_rgb(path)
    assert img.mode == "RGB"
    assert near(img.getpixel((4, 4)), WHITE, tol=6)


def test_cmyk_jpeg_keeps_colour(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (64, 64), RED).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
        assert (
            "adobe" in raw.info
        )  # Pillow writes Adobe-style (inverted) CMYK and undoes it on read
    assert near(load_rgb(path).getpixel((32, 32)), RED)


def test_grey_jpeg(tmp_path: Path) -> None:
    path = save(Image.new("L", (32, 32), 100), tmp_path / "grey.jpg")
    img = load_rgb(path)
    assert img.mode == "RGB"
    assert near(img.getpixel((5, 5)), (100, 100, 100), tol=3)


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    path = save(Image.fromarray(np.tile(ramp, (4, 1))), tmp_path / "g16.png")
    assert Image.open(path).mode == "I;16"
    row = np.asarray(load_rgb(path))[0, :, 0]
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row.astype(int)) >= 0)  # still a ramp
    assert 120 <= row[128] <= 135  # the middle stays mid-grey (clipping would give 255)
    assert (row == 255).sum() < 5


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    values = np.full((8, 8), 0x8000, dtype=">u2")
    path = save(Image.fromarray(values), tmp_path / "be.tif")
    assert Image.open(path).mode == "I;16B"
    assert load_rgb(path).getpixel((2, 2)) == (128, 128, 128)


def test_32bit_int_tiff_16bit_range_and_wide_range(tmp_path: Path) -> None:
    sixteen = np.array([[0, 0x8000, 0xFFFF]], dtype=np.int32)
    path = save(Image.fromarray(sixteen), tmp_path / "i16.tif")
    assert Image.open(path).mode == "I"
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255]
    wide = np.array([[-1000, 0, 1000]], dtype=np.int32)
    path = save(Image.fromarray(wide), tmp_path / "iwide.tif")
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255]  # min..max stretch


def test_float_tiff(tmp_path: Path) -> None:
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    path = save(Image.fromarray(unit), tmp_path / "unit.tif")
    assert Image.open(path).mode == "F"
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255]
    other = np.array([[-3.0, 1.0, 5.0, np.nan]], dtype=np.float32)
    path = save(Image.fromarray(other), tmp_path / "other.tif")
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255, 96]  # NaN -> 0 -> 96


def test_16bit_png_transparent_value_becomes_white(tmp_path: Path) -> None:
    values = np.full((4, 4), 0x1000, dtype=np.uint16)
    values[0, 0] = 0x0500
    path = save(Image.fromarray(values), tmp_path / "t16.png", transparency=0x0500)
    img = load_rgb(path)
    assert img.getpixel((0, 0)) == WHITE
    assert img.getpixel((2, 2)) == (16, 16, 16)


def test_rgba_black_under_transparent_pixels_becomes_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))  # black, fully transparent
    rgba.paste((255, 0, 0, 255), (0, 0, 5, 10))  # opaque red strip
    rgba.paste((255, 0, 0, 128), (5, 0, 10, 10))  # half-transparent red
    img = load_rgb(save(rgba, tmp_path / "rgba.png"))
    assert img.getpixel((15, 5)) == WHITE
    assert img.getpixel((2, 5)) == RED
    assert near(img.getpixel((7, 5)), (255, 127, 127), tol=2)  # red over white, not over black


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 - 2) * 3)
    pal.paste(1, (0, 0, 5, 10))
    path = save(pal, tmp_path / "p.png", transparency=0)  # index 0 (black) is transparent
    img = load_rgb(path)
    assert img.getpixel((8, 5)) == WHITE
    assert img.getpixel((2, 5)) == BLUE


def test_palette_png_without_transparency(tmp_path: Path) -> None:
    path = save(quadrants(16, 16).convert("P"), tmp_path / "p.png")
    assert Image.open(path).mode == "P"
    assert near(load_rgb(path).getpixel((2, 2)), RED)


@pytest.mark.parametrize(
    ("mode", "transparent", "opaque"),
    [("RGB", (10, 20, 30), (200, 200, 200)), ("L", 10, 200)],
)
def test_single_colour_transparency(
    tmp_path: Path, mode: str, transparent: int | tuple[int, ...], opaque: int | tuple[int, ...]
) -> None:
    img = Image.new(mode, (8, 8), transparent)
    img.paste(opaque, (0, 0, 4, 8))
    out = load_rgb(save(img, tmp_path / f"{mode}.png", transparency=transparent))
    assert out.getpixel((6, 4)) == WHITE
    assert out.getpixel((1, 4)) == (200, 200, 200)


def test_la_png(tmp_path: Path) -> None:
    la = Image.new("LA", (10, 10), (0, 0))  # black, transparent
    la.paste((50, 255), (0, 0, 5, 10))
    path = save(la, tmp_path / "la.png")
    assert Image.open(path).mode == "LA"
    img = load_rgb(path)
    assert img.getpixel((8, 5)) == WHITE
    assert img.getpixel((2, 5)) == (50, 50, 50)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("PA", RED),
        ("RGBa", RED),
        ("La", (76, 76, 76)),  # the luma of red
        ("HSV", RED),
    ],
)
def test_modes_no_file_format_keeps(mode: str, expected: tuple[int, int, int]) -> None:
    # Pillow writes no file in these modes, so check the conversion step itself.
    if mode == "HSV":
        img = Image.new("HSV", (4, 4), (0, 255, 255))
    else:
        half_red = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
        half_red.putpixel((0, 0), (0, 0, 0, 0))  # one transparent black pixel
        # Pillow's RGBA -> La drops alpha; going through LA keeps it.
        img = half_red.convert("LA").convert("La") if mode == "La" else half_red.convert(mode)
    out = images._to_rgb(img)
    assert out.mode == "RGB"
    assert near(out.getpixel((2, 2)), expected, tol=3)
    if mode != "HSV":
        assert out.getpixel((0, 0)) == WHITE


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert load_rgb(path).getpixel((8, 8)) == RED


def test_animated_gif_transparent_first_frame(tmp_path: Path) -> None:
    frame = Image.new("P", (16, 16), 0)
    frame.putpalette([0, 0, 0, 0, 255, 0] + [0] * 254 * 3)
    frame.paste(1, (0, 0, 8, 16))
    second = Image.new("P", (16, 16), 1)
    second.putpalette([0, 0, 0, 0, 255, 0] + [0] * 254 * 3)
    path = tmp_path / "t.gif"
    frame.save(path, save_all=True, append_images=[second], transparency=0, duration=50)
    img = load_rgb(path)
    assert img.getpixel((2, 8)) == GREEN
    assert img.getpixel((12, 8)) == WHITE


def test_animated_webp_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in (BLUE, RED)]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert Image.open(path).n_frames == 2
    assert load_rgb(path).getpixel((8, 8)) == BLUE


# ---- EXIF orientation


@pytest.mark.parametrize(
    ("orientation", "stored_as"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),  # tag 6: viewer turns it 90 degrees clockwise
        (8, Image.Transpose.ROTATE_270),  # tag 8: viewer turns it 90 degrees anticlockwise
    ],
)
@pytest.mark.parametrize("min_side", [None, 64])
def test_exif_orientation_matches_upright_copy(
    tmp_path: Path, orientation: int, stored_as: Image.Transpose, min_side: int | None
) -> None:
    upright = quadrants(320, 240)
    upright_path = save(upright, tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged_path = save(upright.transpose(stored_as), tmp_path / "tagged.jpg", quality=95, exif=exif)

    expected = np.asarray(load_rgb(upright_path, min_side=min_side), dtype=np.int16)
    got = np.asarray(load_rgb(tagged_path, min_side=min_side), dtype=np.int16)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 3.0

    decoded = decode_for_index(tagged_path, input_size=32, thumb_side=64)
    assert (decoded.width, decoded.height) == (320, 240)  # true upright size, not stored size


def test_exif_orientation_png(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(
        quadrants(40, 20).transpose(Image.Transpose.ROTATE_90), tmp_path / "t.png", exif=exif
    )
    img = load_rgb(path)
    assert img.size == (40, 20)
    assert img.getpixel((2, 2)) == RED
    assert img.getpixel((38, 2)) == GREEN


# ---- draft (reduced JPEG decode)


def test_draft_reduces_large_jpeg_but_keeps_min_side(tmp_path: Path) -> None:
    path = save(quadrants(4000, 3000), tmp_path / "big.jpg", quality=80)
    img = load_rgb(path, min_side=256)
    assert img.width < 4000
    assert img.width >= 256 and img.height >= 256
    assert near(img.getpixel((10, 10)), RED)

    decoded = decode_for_index(path, input_size=224, thumb_side=256)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.pixels.shape == (224, 224, 3)
    with Image.open(io.BytesIO(decoded.thumbnail or b"")) as thumb:
        assert thumb.size == (256, 192)


def test_draft_never_goes_below_min_side(tmp_path: Path) -> None:
    path = save(quadrants(2048, 1024), tmp_path / "wide.jpg")
    img = load_rgb(path, min_side=256)
    assert img.size == (512, 256)  # 1/4 scale: 1/8 would make the short side 128
    full = load_rgb(path)
    assert full.size == (2048, 1024)


def test_draft_does_not_apply_to_small_or_non_jpeg(tmp_path: Path) -> None:
    small = save(quadrants(300, 200), tmp_path / "small.jpg")
    assert load_rgb(small, min_side=256).size == (300, 200)
    png = save(quadrants(1200, 1000), tmp_path / "big.png")
    assert load_rgb(png, min_side=64).size == (1200, 1000)


# ---- bad files


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"^empty file \(0 bytes\)$"):
        load_rgb(path)
    with pytest.raises(ImageError, match="empty file"):
        load_rgb(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_rgb(io.BytesIO())


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just some text, not a picture\n", encoding="utf-8")
    with pytest.raises(ImageError, match=r"^not an image file$"):
        load_rgb(path)


def test_eps_named_jpg_is_never_handed_to_ghostscript(tmp_path: Path) -> None:
    path = tmp_path / "doc.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageError, match="not an image file"):
        load_rgb(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = (save(noisy(256, 256), tmp_path / "full.jpg", quality=90)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"^truncated or corrupt image data$"):
        load_rgb(path)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_for_index(path, 32)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow's global switch is left alone


def test_truncated_png(tmp_path: Path) -> None:
    data = save(noisy(64, 64), tmp_path / "full.png").read_bytes()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_rgb(data[: len(data) // 2])


CORRUPT = "truncated or corrupt image data"


def _corruptions() -> list[tuple[str, bytes, str | None]]:
    """(label, data, expected ImageError message or None when it still decodes)."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    noisy(32, 32).save(buf, "PNG")
    png = buf.getvalue()
    bad_crc = bytearray(png)
    bad_crc[40] ^= 0xFF
    buf = io.BytesIO()
    noisy(32, 32).save(buf, "JPEG")
    jpeg = buf.getvalue()
    garbled = bytearray(jpeg)
    middle = len(jpeg) // 2  # inside the entropy-coded scan, past the tables
    garbled[middle : middle + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    noise = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return [
        ("png signature only", b"\x89PNG\r\n\x1a\n", CORRUPT),
        ("png random body", b"\x89PNG\r\n\x1a\n" + noise[:500], CORRUPT),
        ("png bad crc", bytes(bad_crc), CORRUPT),
        ("jpeg header only", jpeg[:20], CORRUPT),
        ("jpeg garbled scan", bytes(garbled), None),  # libjpeg decodes through it
        ("gif header only", b"GIF89a\x10\x00\x10\x00", CORRUPT),
        (
            "bmp absurd header",
            b"BM" + struct.pack("<IHHIIiiHH", 100, 0, 0, 54, 40, -5, 7, 1, 24),
            CORRUPT,
        ),
        ("tiff header only", b"II*\x00\x08\x00\x00\x00", CORRUPT),
        ("webp header only", b"RIFF\x10\x00\x00\x00WEBPVP8 ", CORRUPT),
        ("random bytes", noise, "not an image file"),
    ]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    ("label", "data", "expected"), _corruptions(), ids=[c[0] for c in _corruptions()]
)
def test_corrupt_data_only_ever_raises_image_error(
    label: str, data: bytes, expected: str | None
) -> None:
    # A damaged header of a known format is "corrupt", not "not an image file".
    if expected is None:
        assert load_rgb(data).mode == "RGB"
        return
    with pytest.raises(ImageError) as info:
        load_rgb(data)
    assert str(info.value) == expected
    stream = io.BytesIO(data)
    with pytest.raises(ImageError, match=f"^{expected}$"):
        load_rgb(stream)
    assert not stream.closed


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bilevel_png(30_000, 30_000))
    assert path.stat().st_size < 1_000_000  # 900 megapixels in under a megabyte
    with pytest.raises(
        ImageError, match=r"^image too large \(30000x30000 pixels, limit 100000000\)$"
    ):
        load_rgb(path)
    with pytest.raises(ImageError, match="image too large"):
        decode_for_index(path, 224)
    # Same header, pixel data cut short: still "too large", so the pixels were never read.
    cut = tmp_path / "bomb_cut.png"
    cut.write_bytes(bilevel_png(30_000, 30_000, truncate_idat=True))
    with pytest.raises(ImageError, match=r"image too large \(30000x30000"):
        load_rgb(cut)
    with pytest.raises(ImageError, match=r"image too large \(30000x30000"):
        load_rgb(cut.read_bytes())
    stream = io.BytesIO(cut.read_bytes())
    with pytest.raises(ImageError, match=r"image too large \(30000x30000"):
        load_rgb(stream)
    assert not stream.closed  # the error path does not close the caller's stream either
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's global was not touched


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_our_limit_applies_below_pillows_error_threshold(tmp_path: Path) -> None:
    # 100,010,000 pixels: above MAX_PIXELS, below Pillow's own error (2 x 89.5M).
    path = tmp_path / "big.png"
    path.write_bytes(bilevel_png(10_001, 10_000, truncate_idat=True))
    with pytest.raises(
        ImageError, match=r"^image too large \(10001x10000 pixels, limit 100000000\)$"
    ):
        load_rgb(path)


def test_limit_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(Image.new("RGB", (20, 20), RED), tmp_path / "small.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 399)
    with pytest.raises(ImageError, match=r"^image too large \(20x20 pixels, limit 399\)$"):
        load_rgb(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 400)
    assert load_rgb(path).size == (20, 20)
    assert MAX_PIXELS == 100_000_000


def test_pillow_bomb_warning_as_error_becomes_image_error(tmp_path: Path) -> None:
    # An app running with -W error turns Pillow's bomb warning into an exception.
    path = tmp_path / "big.png"
    path.write_bytes(bilevel_png(10_001, 9_000, truncate_idat=True))  # 90M: between the two limits
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageError, match="truncated or corrupt"),
    ):
        load_rgb(path)  # passes the size checks, then fails on the cut pixel data
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match=r"image too large \(10001x9000 pixels"):
            load_rgb(path)


def test_missing_file(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (8, 8)), tmp_path / "gone.jpg")
    path.unlink()  # deleted between the scan and the decode
    with pytest.raises(ImageError, match=r"^file vanished before it could be read$"):
        load_rgb(path)
    with pytest.raises(ImageError, match="file vanished"):
        decode_for_index(path, 32)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    with pytest.raises(ImageError):
        load_rgb(folder)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (8, 8)), tmp_path / "secret.jpg")
    path.chmod(0)
    try:
        try:
            path.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("running with privileges that ignore file permissions (root?)")
        with pytest.raises(ImageError, match=r"^permission denied$"):
            load_rgb(path)
    finally:
        path.chmod(0o644)


def test_unicode_file_names(tmp_path: Path) -> None:
    for name in ("фото.jpg", "日本の写真.png", "café\u0301 ünïcødé.webp", "emoji 📷.gif"):
        path = save(Image.new("RGB", (12, 10), BLUE), tmp_path / name)
        img = load_rgb(path)
        assert img.size == (12, 10)
        assert near(img.getpixel((5, 5)), BLUE)
        assert decode_for_index(path, 8).width == 12


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open files")
def test_files_are_always_closed(tmp_path: Path) -> None:
    good = save(Image.new("RGB", (16, 16), RED), tmp_path / "ok.jpg")
    text = tmp_path / "text.jpg"
    text.write_text("nope")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bilevel_png(20_000, 10_000, truncate_idat=True))
    before = open_fds()
    for _ in range(5):
        load_rgb(good, min_side=8)
        decode_for_index(good, 8)
        for bad in (text, cut, empty, bomb):
            with pytest.raises(ImageError):
                load_rgb(bad)
    assert open_fds() == before


# ---- model input / thumbnail


def test_model_input_is_the_whole_image() -> None:
    img = Image.new("RGB", (400, 100), BLUE)
    img.paste(RED, (0, 0, 20, 100))  # thin red left border
    arr = model_input(img, 64)
    assert arr.shape == (64, 64, 3)
    assert arr.dtype == np.uint8
    assert arr.flags.c_contiguous and arr.flags.writeable
    assert near(arr[0, 0], RED) and near(arr[63, 0], RED)  # border kept, top to bottom
    assert near(arr[32, 63], BLUE)
    # squashed, not cropped: the border is 5% of the width at any size
    assert 2 <= int((arr[32, :, 0] > 128).sum()) <= 4


def test_model_input_converts_other_modes() -> None:
    arr = model_input(Image.new("L", (50, 30), 77), 16)
    assert arr.shape == (16, 16, 3)
    assert np.all(arr == 77)


def test_thumbnail_keeps_aspect_and_never_upscales() -> None:
    cases = [
        ((400, 100), 256, (256, 64)),
        ((100, 400), 256, (64, 256)),
        ((100, 50), 256, (100, 50)),
        ((3000, 2000), 128, (128, 85)),
        ((5000, 1), 100, (100, 1)),
    ]
    for size, side, expected in cases:
        data = thumbnail_jpeg(Image.new("RGB", size, GREEN), max_side=side)
        assert data[:2] == b"\xff\xd8"  # a JPEG
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.format == "JPEG"
            assert thumb.size == expected


def test_thumbnail_of_rgba_is_on_white() -> None:
    data = thumbnail_jpeg(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), max_side=32)
    with Image.open(io.BytesIO(data)) as thumb:
        assert near(thumb.convert("RGB").getpixel((16, 16)), WHITE, tol=3)


def test_thumbnail_quality_changes_size() -> None:
    img = noisy(128, 128)
    assert len(thumbnail_jpeg(img, 128, quality=30)) < len(thumbnail_jpeg(img, 128, quality=95))


def test_decode_for_index(tmp_path: Path) -> None:
    path = save(quadrants(300, 200), tmp_path / "q.png")
    decoded = decode_for_index(path, input_size=32)
    assert isinstance(decoded, DecodedImage)
    assert (decoded.width, decoded.height) == (300, 200)
    assert decoded.pixels.shape == (32, 32, 3) and decoded.pixels.dtype == np.uint8
    assert near(decoded.pixels[2, 2], RED) and near(decoded.pixels[29, 2], BLUE)
    assert np.array_equal(decoded.pixels, model_input(load_rgb(path), 32))
    assert decoded.thumbnail is not None
    with Image.open(io.BytesIO(decoded.thumbnail)) as thumb:
        assert thumb.size == (256, 171)
    no_thumb = decode_for_index(path, input_size=32, thumb_side=None)
    assert no_thumb.thumbnail is None
    with pytest.raises(AttributeError):
        decoded.width = 1  # type: ignore[misc]
