"""Real widgets under QT_QPA_PLATFORM=offscreen, driven with pytest-qt."""

import numpy as np
import pytest
from PySide6.QtCore import QObject, QUrl, Slot

from explorer.core.indexer import index_folder
from explorer.core.layout import UMAP
from explorer.gui.controllers.tasks import TaskKind


@pytest.fixture
def window(qtbot):
    """A main window with nothing open; shut down cleanly (no leaked threads) after the test."""
    from explorer.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.session.shutdown()
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # deliver queued worker results while their tasks still exist


def wait_until_ready(qtbot, win, layout: bool = True, timeout: int = 120_000) -> None:
    """Wait for indexing (and UMAP's map, not only the quick one) to finish."""
    def ready():
        s = win.state
        assert s.collection is not None and not s.indexing.running
        assert win.tasks.latest(TaskKind.OPEN) is None
        if layout:
            assert s.layout is not None and len(s.layout.ids) == len(s.collection)
            assert s.layout.kind == UMAP and not s.layout_refining and not win.map.in_transition()
    qtbot.waitUntil(ready, timeout=timeout)


@pytest.fixture
def indexed_folder(photo_folder, lite0):
    """The small photo folder, already indexed (so GUI tests start from a warm collection)."""
    index_folder(photo_folder, lite0)
    return photo_folder


@pytest.fixture
def ready_window(qtbot, window, indexed_folder):
    """A window showing the indexed photo folder with its map computed."""
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window)
    return window


def rows_by_name(state, *names: str) -> list[int]:
    return [next(i for i, p in enumerate(state.collection.paths) if p.endswith(n)) for n in names]


class UrlCatcher(QObject):
    """Stands in for the desktop's file viewer (Qt's own hook for it, QDesktopServices)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot(QUrl)
    def open(self, url):
        self.urls.append(url)
