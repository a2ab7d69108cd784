"""Render the Explorer application icon for every platform from one source.

``icons/explorer.svg`` is the only hand-edited file. Windows wants an .ico,
macOS an .icns and Linux desktops/Qt a set of PNGs; rendering them all from
the SVG with Qt's own SVG renderer keeps them identical and lets the design
change in one place. The outputs are committed, so builds never run this.

Usage: ``python icons/render_icons.py`` (idempotent: it overwrites outputs).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SVG = HERE / "explorer.svg"
PNG_DIR = HERE / "png"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(renderer: QSvgRenderer, size: int) -> Path:
    """Render the SVG at ``size`` x ``size`` onto a transparent PNG."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    path = PNG_DIR / f"explorer-{size}.png"
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"invalid SVG: {SVG}")
    PNG_DIR.mkdir(exist_ok=True)
    pngs = {size: render_png(renderer, size) for size in PNG_SIZES}

    # Pillow picks the best-matching render for each ICO entry from these.
    frames = [Image.open(pngs[s]).convert("RGBA") for s in ICO_SIZES]
    frames[-1].save(HERE / "explorer.ico", sizes=[(s, s) for s in ICO_SIZES],
                    append_images=frames[:-1])
    # ICNS is built from the 512 render; the smaller renders replace Pillow's
    # downscaled copies where the sizes match (the 1024 @2x slot is upscaled).
    small = [Image.open(pngs[s]).convert("RGBA") for s in (32, 64, 128, 256)]
    Image.open(pngs[512]).convert("RGBA").save(HERE / "explorer.icns",
                                               append_images=small)
    print(f"wrote {len(pngs)} PNGs, explorer.ico and explorer.icns in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
