"""Where query examples come from: dropped or pasted files and images, sorted into indexed
images (used by their stored vectors) and other files (to embed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, Qt, QUrl
from PySide6.QtGui import QImage

from ....core.images import image_extensions
from ....core.search import SearchIndex

MAX_PASTED_SIDE = 1024  # the model sees 224 px: no need to carry a 4K screenshot to the worker


def png_bytes(image: QImage) -> bytes:
    """Encode a QImage (e.g. from the clipboard) as PNG, shrunk to at most MAX_PASTED_SIDE."""
    if max(image.width(), image.height()) > MAX_PASTED_SIDE:
        image = image.scaled(MAX_PASTED_SIDE, MAX_PASTED_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def local_files(mime: QMimeData) -> list[Path]:
    """The files on this computer that a drop or the clipboard names by URL."""
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


def paths_in_text(text: str) -> list[Path]:
    """Existing files named in pasted text, one path or file:// URL per line."""
    paths = []
    for line in text.splitlines():
        line = line.strip().strip('"')
        if not line:
            continue
        path = Path(QUrl(line).toLocalFile()) if line.startswith("file:") else Path(line).expanduser()
        if path.is_absolute() and path.exists():
            paths.append(path)
    return paths


def classify_paths(paths: Sequence[Path], collection: SearchIndex | None) -> tuple[list[int], list[Path], list[str]]:
    """Split dropped paths into rows of the collection, other image files, and readable problems."""
    rows: list[int] = []
    files: list[Path] = []
    problems: list[str] = []
    extensions = image_extensions()
    for path in paths:
        if path.is_dir():
            problems.append(f"{path.name}: is a folder; drop image files (or open the folder with Ctrl+O)")
            continue
        if not path.is_file():
            problems.append(f"{path}: no such file")
            continue
        row = collection.row_of(path) if collection is not None else None
        if row is not None:
            rows.append(row)
            continue
        if path.suffix.lower() not in extensions:
            problems.append(f"{path.name}: not an image file (use {', '.join(sorted(extensions))})")
            continue
        files.append(path)  # inside the folder but not indexed (yet) also lands here: embed it
    return rows, files, problems


def relative_to_collection(path: Path, collection: SearchIndex | None) -> str | None:
    return collection.relative_path(path) if collection is not None else None
