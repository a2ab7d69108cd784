"""The one set-up of a plot in the app's theme: the palette's base colour behind it, its text
colour on the axes and labels, and none of pyqtgraph's own buttons or context menu (they speak
of "plot items" and "view boxes", not of images and similarity)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget


def themed_plot(parent: QWidget, bottom: str = "", left: str = "", view_box: pg.ViewBox | None = None,
                zoom_x_only: bool = False) -> pg.PlotWidget:
    """A PlotWidget coloured from `parent`'s palette, with these axis labels. `zoom_x_only`:
    the wheel zooms the similarity axis only (histograms, whose counts keep their scale)."""
    palette = parent.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    plot = pg.PlotWidget(viewBox=view_box, background=palette.color(QPalette.ColorRole.Base))
    item = plot.getPlotItem()
    for axis, label in (("bottom", bottom), ("left", left)):
        item.getAxis(axis).setPen(text)
        item.getAxis(axis).setTextPen(text)
        if label:
            item.setLabel(axis, label, color=text.name())
    if zoom_x_only:
        item.setMouseEnabled(x=True, y=False)
    item.hideButtons()
    item.setMenuEnabled(False)
    return plot


def accent_fill(widget: QWidget, alpha: int = 140) -> tuple[QColor, QColor]:
    """The palette's highlight colour, and the same colour translucent for a filled curve."""
    accent = QColor(widget.palette().color(QPalette.ColorRole.Highlight))
    fill = QColor(accent)
    fill.setAlpha(alpha)
    return accent, fill
