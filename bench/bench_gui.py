"""The desktop app at scale: open, scroll, pan/zoom and query a large synthetic collection.

    python bench/bench_gui.py [N] [--index M]   (N default 100000; builds bench/out/synthetic-N once)

Prints a markdown table: time until the window shows the collection, the longest event-loop stall
while opening and re-indexing (a 5 ms timer measures gaps), grid scroll frames, map pan/zoom
frames with all N points, and the time a query takes to update scores, grid, map and histogram.
Then it indexes M real JPEGs from scratch (default 600, bench_core's 300 px pool) in the same
window with a query shown, and reports the longest stall while the model runs and batches arrive.
Runs offscreen; frames are timed with grab(), which paints synchronously.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # never the user's settings
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_core import image_pool, linked_folder  # noqa: E402
from synthetic import synthetic_collection  # noqa: E402
from explorer.gui.controllers.tasks import TaskKind  # noqa: E402


class StallMeter:
    """Longest gap between ticks of a fast timer: how long the event loop was blocked."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.start = self.last = time.perf_counter()
        self.gaps: list[float] = []
        self.ends: list[float] = []  # when each gap ended, seconds after the meter started
        self.timer = QTimer(interval=5, timeout=self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.ends.append(now - self.start)
        self.last = now

    def worst_ms(self) -> float:
        return 1000 * max(self.gaps, default=0.0)

    def worst(self, n: int = 3) -> str:
        """The n longest gaps, each with when it ended: which step of the opening blocked."""
        worst = sorted(zip(self.gaps, self.ends), reverse=True)[:n]
        return ", ".join(f"{1000 * gap:.0f} ms at {end:.2f} s" for gap, end in worst)


def wait(app, condition, timeout: float = 600) -> float:
    start = time.perf_counter()
    while not condition():
        app.processEvents()
        time.sleep(0.001)
        if time.perf_counter() - start > timeout:
            raise TimeoutError
    return time.perf_counter() - start


def frame_ms(widget, repeats: int = 5, step=None) -> float:
    times = []
    for i in range(repeats):
        if step:
            step(i)
        start = time.perf_counter()
        widget.grab()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def index_from_scratch(app, window, m: int, rows: list[tuple[str, str]]) -> None:
    """Index m new photos with the window open and a query shown: the GUI takes every batch."""
    folder = linked_folder(image_pool("small", m, 300, 225))
    window.open_folder(folder)
    wait(app, lambda: window.state.collection is not None and len(window.state.collection) > 0)
    window.session.query_by_rows([0])  # every batch now rescores, re-sorts and redraws
    meter = StallMeter()
    start = time.perf_counter()
    wait(app, lambda: not window.state.indexing.running and len(window.state.collection) == m
         and window.tasks.latest(TaskKind.OPEN) is None)
    seconds = time.perf_counter() - start
    meter.timer.stop()
    rows.append((f"index {m} new photos from scratch (query shown), GUI open", f"{seconds:.1f} s"))
    rows.append(("worst event-loop stall while indexing", f"{meter.worst_ms():.0f} ms"))
    rows.append(("  its three longest stalls (when they ended)", meter.worst()))
    meter = StallMeter()  # then the first UMAP layout of the new folder, on a worker
    start = time.perf_counter()
    wait(app, lambda: window.state.layout is not None and window.tasks.latest(TaskKind.LAYOUT) is None)
    meter.timer.stop()
    rows.append(("then its map layout (UMAP, first in this process)", f"{time.perf_counter() - start:.1f} s"))
    rows.append(("worst event-loop stall while laying out", f"{meter.worst_ms():.0f} ms"))
    rows.append(("  its three longest stalls (when they ended)", meter.worst()))


def main(n: int, m: int) -> None:
    folder = synthetic_collection(n)
    from PySide6.QtWidgets import QApplication, QListView

    import pyqtgraph as pg

    from explorer.gui.main_window import MainWindow

    app = QApplication([])
    rows: list[tuple[str, str]] = []
    started = time.perf_counter()
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    rows.append(("window shown (imports done before)", f"{1000 * (time.perf_counter() - started):.0f} ms"))

    meter = StallMeter()
    start = time.perf_counter()
    window.open_folder(folder)
    wait(app, lambda: window.state.collection is not None and len(window.state.collection) == n)
    window.grab()  # painted: what the event loop would do next (and counted as a stall, as it is)
    rows.append(("open: collection in the grid", f"{1000 * (time.perf_counter() - start):.0f} ms"))
    reindexed = []
    window.session.indexing_finished.connect(reindexed.append)
    wait(app, lambda: reindexed and not window.state.indexing.running and window.state.layout is not None
         and window.tasks.latest(TaskKind.OPEN) is None)
    rows.append(("open + no-change re-index of all files", f"{time.perf_counter() - start:.1f} s"))
    rows.append(("worst event-loop stall while opening", f"{meter.worst_ms():.0f} ms"))
    rows.append(("  its three longest stalls (when they ended)", meter.worst()))

    grid = window.grid.findChild(QListView)
    bar = grid.verticalScrollBar()
    scroll = frame_ms(grid.viewport(), 20, lambda i: (bar.setValue(bar.maximum() * i // 20), app.processEvents()))
    rows.append(("grid scroll: frame (20 jumps across all rows)", f"{scroll:.1f} ms"))

    plot = window.map.findChild(pg.PlotWidget)
    vb = plot.getPlotItem().getViewBox()
    full = frame_ms(plot, 5, lambda i: vb.autoRange())
    rows.append((f"map frame, all {n} points", f"{full:.1f} ms"))
    pan = frame_ms(plot, 10, lambda i: vb.translateBy(x=0.5 * (1 if i % 2 else -1), y=0.3))
    rows.append(("map pan: frame", f"{pan:.1f} ms"))
    zoom = frame_ms(plot, 10, lambda i: vb.scaleBy((0.8, 0.8) if i < 5 else (1.25, 1.25)))
    rows.append(("map zoom: frame", f"{zoom:.1f} ms"))

    times = []
    for row in range(0, 7):  # as a click on the map or "Query by this image" does it
        start = time.perf_counter()
        window.session.query_by_rows([row * 997 % n])
        app.processEvents()
        times.append(1000 * (time.perf_counter() - start))
    rows.append(("query by an image -> scores, grid, map, histogram updated and painted",
                 f"{statistics.median(times):.0f} ms (max {max(times):.0f})"))
    meter.timer.stop()
    if m:
        index_from_scratch(app, window, m, rows)

    window.close()
    print(f"\n| measure (N = {n}) | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}; "
          f"peak RSS {__import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="images in the synthetic collection")
    parser.add_argument("--index", type=int, default=600, help="photos to index from scratch (0: skip)")
    args = parser.parse_args()
    main(args.n, args.index)
