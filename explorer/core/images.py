"""The only place that opens image files: safe decoding, model input, thumbnails.

Everything here is numpy + Pillow, so it is cheap to import in decode worker
threads or processes (no Qt, no torch).

Decoding policy, in the order it happens:

1. ``Image.open`` reads only the header; the pixel count is checked against
   ``MAX_PIXELS`` *before* any pixel data is decoded (decompression bombs).
2. JPEGs are decoded at a reduced scale with ``Image.draft`` when the caller
   says how many pixels it needs (``min_side``); libjpeg's DCT scaling is
   several times faster than decoding at full size and resizing.
3. EXIF orientation is applied, so pixels are upright as a viewer shows them.
4. Every mode becomes 8-bit RGB; transparency is composited on white, high
   bit depths are scaled (not clipped) into 0..255.

Any failure for a bad file becomes ``ImageError`` whose message a user can read.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MAX_PIXELS",
    "DecodedImage",
    "ImageError",
    "decode_for_index",
    "image_extensions",
    "load_rgb",
    "model_input",
    "register_optional_plugins",
    "thumbnail_jpeg",
]

log = logging.getLogger(__name__)

#: Decompression-bomb limit: images with more pixels are refused before decoding.
MAX_PIXELS: int = 100_000_000

_BASE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
# Offered only when Pillow can actually open them (plugin or built-in codec).
_OPTIONAL_EXTENSIONS = frozenset({".heic", ".heif", ".avif"})

# Pillow identifies files by content, not by name, and some of its plugins are
# risky for untrusted input (EPS runs Ghostscript). Only these raster formats
# are ever tried; anything else is "not an image file".
_ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "HEIF", "AVIF")

_WHITE = (255, 255, 255)

_plugins_lock = threading.Lock()
_plugins_registered = False


class ImageError(Exception):
    """Decoding failed; ``str(err)`` is a short reason a user can read."""


def register_optional_plugins() -> None:
    """Register the HEIF/AVIF openers if their packages are importable.

    Idempotent and thread-safe; never raises (a missing or broken optional
    plugin only means those formats are not offered).
    """
    global _plugins_registered
    with _plugins_lock:
        if _plugins_registered:
            return
        _plugins_registered = True
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except Exception as exc:  # noqa: BLE001  (ImportError, or a broken libheif build)
            log.debug("HEIF support unavailable: %s", exc)
        # Pillow >= 11.3 may ship its own AVIF codec; prefer it when present.
        if ".avif" not in Image.registered_extensions():
            try:
                import pillow_avif  # noqa: F401  (registers itself on import)
            except Exception as exc:  # noqa: BLE001  (optional: never fatal)
                log.debug("AVIF support unavailable: %s", exc)


def image_extensions() -> frozenset[str]:
    """Lower-case suffixes (with dot) of the files treated as images.

    The optional formats are included only when an opener is registered, so a
    scan never lists files that ``load_rgb`` cannot decode.
    """
    register_optional_plugins()
    registered = Image.registered_extensions()
    return _BASE_EXTENSIONS | {ext for ext in _OPTIONAL_EXTENSIONS if ext in registered}


def load_rgb(
    source: str | os.PathLike[str] | bytes | IO[bytes], min_side: int | None = None
) -> Image.Image:
    """Decode ``source`` (path, encoded bytes or binary file) to upright 8-bit RGB.

    ``min_side``: the caller needs at least this many pixels on both sides; large
    JPEGs are then decoded at a reduced scale that still satisfies it.
    Raises ``ImageError`` for any bad file.
    """
    image, _ = _decode(source, min_side)
    return image


def model_input(img: Image.Image, size: int) -> np.ndarray:
    """The whole image squashed to ``size`` x ``size``: uint8 (size, size, 3), C-contiguous.

    No centre crop: the borders of a scene matter for retrieval.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if img.mode != "RGB":
        img = img.convert("RGB")
    # reducing_gap: shrink by an integer box filter first, then bilinear. Much
    # faster for big reductions and visually the same as a full-support filter.
    resized = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    # np.array (not asarray) so the result owns writable memory: torch.from_numpy
    # warns about read-only buffers.
    return np.array(resized, dtype=np.uint8, order="C")


def thumbnail_jpeg(img: Image.Image, max_side: int = 256, quality: int = 85) -> bytes:
    """JPEG bytes of an aspect-preserving thumbnail whose longest side is at most ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    width, height = img.size
    longest = max(width, height)
    if longest > max_side:
        scale = max_side / longest
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        # resize, not copy()+thumbnail(): avoids copying a full-size image first.
        thumb = img.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    else:
        thumb = img  # never upscale
    if thumb.mode not in ("RGB", "L"):
        thumb = _to_rgb(thumb)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value, so no field-wise ==
class DecodedImage:
    """What indexing needs from one file, made from a single decode."""

    pixels: np.ndarray  # model_input(..., input_size)
    thumbnail: bytes | None  # thumbnail_jpeg(...), or None when not asked for
    width: int  # the file's true upright size (after EXIF, before draft reduction)
    height: int


def decode_for_index(
    path: str | os.PathLike[str], input_size: int, thumb_side: int | None = 256
) -> DecodedImage:
    """Decode ``path`` once and make both the model input and the thumbnail from it.

    Raises ``ImageError``.
    """
    image, (width, height) = _decode(path, max(input_size, thumb_side or 0))
    try:
        pixels = model_input(image, input_size)
        thumbnail = thumbnail_jpeg(image, thumb_side) if thumb_side is not None else None
    except MemoryError as exc:
        raise ImageError("not enough memory to decode the image") from exc
    finally:
        image.close()
    return DecodedImage(pixels=pixels, thumbnail=thumbnail, width=width, height=height)


# ---- internals


def _decode(
    source: str | os.PathLike[str] | bytes | IO[bytes], min_side: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode to upright RGB; also return the true upright (width, height)."""
    register_optional_plugins()  # worker processes start without them
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise ImageError("empty file (0 bytes)")
            return _decode_stream(io.BytesIO(source), min_side)
        if isinstance(source, (str, os.PathLike)):
            # Open the file ourselves: we control closing, and fstat tells an
            # empty file apart from an unrecognised one.
            with open(source, "rb") as fp:
                if os.fstat(fp.fileno()).st_size == 0:
                    raise ImageError("empty file (0 bytes)")
                return _decode_stream(fp, min_side)
        if _stream_is_empty(source):
            raise ImageError("empty file (0 bytes)")
        return _decode_stream(source, min_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired (its limit is ~179M pixels for the error, or
        # lower if the app runs with warnings as errors). Our message is nicer.
        raise ImageError(_too_large_message(source)) from exc
    except UnidentifiedImageError as exc:
        # Pillow says "cannot identify" both for a text file and for a JPEG or
        # PNG whose header is damaged; the signature tells the two apart.
        if _sniff(source).format is not None:
            raise ImageError("truncated or corrupt image data") from exc
        raise ImageError("not an image file") from exc
    except Exception as exc:
        # Pillow plugins raise a zoo of types for corrupt data (OSError,
        # SyntaxError, struct.error, ValueError, IndexError...). A bad file must
        # never crash indexing, so every one becomes a readable ImageError.
        raise ImageError(_reason(exc)) from exc


def _decode_stream(fp: IO[bytes], min_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
    with Image.open(fp, formats=_open_formats()) as im:
        width, height = im.size
        # Before load(): refuse without decoding a single pixel.
        _check_pixels(width, height)
        if min_side is not None and min_side > 0:
            # JPEG only (a no-op for other formats). Pillow picks the largest
            # 1/2, 1/4, 1/8 scale that keeps both sides >= min_side.
            im.draft("RGB", (min_side, min_side))
        im.load()
        loaded_size = im.size
        _exif_upright(im)
        # A 90-degree orientation swaps the axes; report the file's true size.
        if im.size != loaded_size:
            width, height = height, width
        rgb = _to_rgb(im)
        if rgb is im:
            # Closing `im` (end of the with-block) would invalidate it.
            rgb = im.copy()
    return rgb, (width, height)


def _check_pixels(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(f"image too large ({width}x{height} pixels, limit {MAX_PIXELS})")


def _exif_upright(im: Image.Image) -> None:
    """Apply the EXIF orientation in place (in place: no full-size copy when upright)."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as exc:  # noqa: BLE001  (see below)
        # Orientation is metadata: a malformed EXIF block should not cost the
        # user the picture. Keep the pixels as stored.
        log.debug("ignoring unreadable EXIF orientation: %s", exc)


def _open_formats() -> tuple[str, ...]:
    # Image.open raises KeyError for a listed format that has no registered
    # opener (HEIF/AVIF without their plugin), so list only registered ones.
    return tuple(name for name in _ALLOWED_FORMATS if name in Image.OPEN)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency composited on white."""
    if im.mode == "RGB" and "transparency" not in im.info:
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return _high_depth_to_l(im).convert("RGB")
    try:
        if im.has_transparency_data:
            if im.mode == "La":
                im = im.convert("LA")  # Pillow has no direct La -> RGBA conversion
            # Many PNGs store black (or garbage) under fully transparent pixels;
            # a white background matches how viewers and browsers show them.
            rgba = im.convert("RGBA")
            background = Image.new("RGB", rgba.size, _WHITE)
            background.paste(rgba, mask=rgba.getchannel("A"))
            return background
        # 1, L, P, CMYK (Pillow already undoes Adobe's inverted CMYK), YCbCr, LAB...
        return im.convert("RGB")
    except ValueError as exc:
        raise ImageError(f"unsupported colour mode ({im.mode})") from exc


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale to 8-bit L by scaling, never clipping.

    Pillow's own convert('L') clips (a 16-bit gradient comes out almost all 255).
    """
    values = np.asarray(im)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            out = np.rint(values * 255.0)  # the usual normalised-float convention
        else:
            out = _stretch(values, lo, hi)
    else:
        wide = values.astype(np.int64)
        lo, hi = int(wide.min()), int(wide.max())
        if lo >= 0 and hi <= 0xFFFF:
            out = wide >> 8  # 16-bit data: keep the file's own black and white points
        else:
            out = _stretch(wide, lo, hi)  # arbitrary 32-bit range: min..max
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    transparent = im.info.get("transparency")
    if isinstance(transparent, int):
        # A 16-bit grey PNG may mark one value transparent (tRNS): make it white.
        out8[values == transparent] = 255
    return Image.fromarray(np.ascontiguousarray(out8))


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float64)
    return np.rint((values - lo) * (255.0 / (hi - lo)))


def _stream_is_empty(fp: IO[bytes]) -> bool:
    try:
        position = fp.tell()
        end = fp.seek(0, os.SEEK_END)
        fp.seek(position)
    except (AttributeError, OSError, ValueError):
        return False  # not seekable: let Pillow read it and judge
    return end == position


def _too_large_message(source: str | os.PathLike[str] | bytes | IO[bytes]) -> str:
    """Message for Pillow's bomb error, which reports only a pixel count."""
    size = _sniff(source).size
    if size is None:
        return f"image too large (over {MAX_PIXELS} pixels)"
    return f"image too large ({size[0]}x{size[1]} pixels, limit {MAX_PIXELS})"


@dataclass(frozen=True)
class _Sniffed:
    format: str | None = None  # first allowed format whose signature matches
    size: tuple[int, int] | None = None  # from that format's header, if it parses


def _sniff(source: str | os.PathLike[str] | bytes | IO[bytes]) -> _Sniffed:
    """Error path only: what the header says, bypassing ``Image.open``.

    Calls the format plugins directly, so neither Pillow's bomb check (which
    lives in ``Image.open``) nor its "cannot identify" fallback hides the answer.
    Best effort: any failure just means "unknown".
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _sniff_stream(io.BytesIO(source))
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as fp:
                return _sniff_stream(fp)
        source.seek(0)
        return _sniff_stream(source)
    except Exception as exc:  # noqa: BLE001  (best effort: the error is already decided)
        log.debug("could not re-read the image header: %s", exc)
        return _Sniffed()


def _sniff_stream(fp: IO[bytes]) -> _Sniffed:
    prefix = fp.read(16)
    matched: str | None = None
    for name in _open_formats():
        factory, accept = Image.OPEN[name]
        accepted = accept(prefix) if accept is not None else False
        if isinstance(accepted, str) or not accepted:  # a str is Pillow's "maybe, with a warning"
            continue
        matched = matched or name
        fp.seek(0)
        try:
            im = factory(fp, "")  # parses the header only; no pixels are read
        except (SyntaxError, IndexError, TypeError, ValueError, struct.error, OSError):
            continue
        # No im.close(): ImageFile.close() closes the stream even when it is the
        # caller's; the header-only image holds nothing else worth releasing.
        return _Sniffed(format=name, size=im.size)
    return _Sniffed(format=matched)


def _reason(exc: BaseException) -> str:
    """A short, readable reason for a decode failure."""
    if isinstance(exc, FileNotFoundError):
        return "file vanished before it could be read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    if isinstance(exc, OSError) and exc.errno is not None:
        # A real I/O failure (EIO, a network share gone...), not bad pixels.
        return f"read error ({exc.strerror or exc.errno})"
    # Pillow's OSError("image file is truncated"), "broken data stream",
    # decoder errors, SyntaxError("broken PNG file"), struct.error, ...
    return "truncated or corrupt image data"
