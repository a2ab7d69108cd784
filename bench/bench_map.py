"""Map view timings with a large synthetic layout (no files, no model: points only).

    python bench/bench_map.py [--n 100000] [--repeat 3]

Prints a markdown table of medians: putting a new layout on the map, recolouring, one frame
(offscreen grab) at full view and zoomed into the image map, hover lookup and selections; plus
pyqtgraph's stock ScatterPlotItem doing the same recolour, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QPointF, QRectF  # noqa: E402
from PySide6.QtGui import QColor, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.core.analysis import label_codes  # noqa: E402
from explorer.core.layout import Layout  # noqa: E402
from explorer.gui.views.map.map_view import MapView  # noqa: E402
from explorer.gui.controllers.session import Session  # noqa: E402
from explorer.gui.state.app_state import AppState  # noqa: E402
from explorer.gui.state.query import QueryExample  # noqa: E402
from explorer.gui.controllers.thumbnails import ThumbnailCache  # noqa: E402
from explorer.gui.controllers.tasks import Tasks  # noqa: E402


QUERY_DIM = 16


class FakeCollection:
    """What the map reads of a collection: sorted ids and relative paths, and (to be scored
    against a query) small unit vectors."""

    def __init__(self, n: int, labels: int, rng: np.random.Generator):
        self.ids = np.arange(1, n + 1, dtype=np.int64) * 3  # sorted, not dense: like real ids
        self.paths = [f"label{k:03d}/image{i:06d}.jpg" for i, k in enumerate(rng.integers(0, labels, n))]
        self.folder = Path("/nonexistent")
        self.vectors = unit_rows(rng.normal(size=(n, QUERY_DIM)))

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self) -> tuple[list[str], np.ndarray]:
        return label_codes(self.paths)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_xy(n: int, rng: np.random.Generator, clusters: int = 50) -> np.ndarray:
    centres = rng.uniform(-20, 20, (clusters, 2))
    return (centres[rng.integers(0, clusters, n)] + rng.normal(0, 0.8, (n, 2))).astype(np.float32)


def timed(func, repeat: int) -> float:
    """Median milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)

    state = AppState()
    tasks = Tasks()
    view = MapView(state, Session(state, tasks), ThumbnailCache(tasks, state))
    view.resize(1000, 800)
    view.show()
    app.processEvents()
    collection = FakeCollection(n, 50, rng)
    state.set_collection(collection, collection.folder, "bench")  # type: ignore[arg-type]
    layout = Layout(collection.ids.copy(), clustered_xy(n, rng))
    rows: list[tuple[str, float]] = []

    rows.append(("new layout on the map (state.set_layout: map ids, labels, setData, colour)",
                 timed(lambda: state.set_layout(layout), repeat)))
    rows.append(("  of which scatter.set_points (pyqtgraph setData)",
                 timed(lambda: view.scatter.set_points(view._xy, view._rows), repeat)))
    view._recolour()
    rows.append(("recolour by folder (50 labels, 21-colour palette)", timed(view._recolour, repeat)))
    state.query.rescore(collection.vectors)

    def new_query() -> None:  # scoring 16-d vectors costs ~0.3 ms of what this times
        state.query.set_positives([QueryExample("query", unit_rows(rng.normal(size=(1, QUERY_DIM)))[0])])

    new_query()
    view.set_colour_mode("similarity")

    rows.append(("new query in similarity mode (16 colours + top-k rings)", timed(new_query, repeat)))
    state.select(np.arange(0, n, 7), "bench")
    rows.append(("selection of n/7 from another view (label mode: rings)",
                 timed(lambda: view._selection_changed("grid"), repeat)))
    view.set_colour_mode("label")
    view.reset_view()
    app.processEvents()
    rows.append(("frame, whole map (grab)", timed(view.plot.grab, repeat)))

    (x0, x1), (y0, y1) = view.view_box.viewRange()
    centre = QPointF(*layout.xy[0])
    # Zoom to the box around the 150 points nearest the first: the image map kicks in.
    nearest = np.argsort(np.abs(layout.xy - layout.xy[0]).max(axis=1))[:150]
    low, high = layout.xy[nearest].min(axis=0), layout.xy[nearest].max(axis=0)
    view.view_box.setRange(QRectF(*low, *(high - low)), padding=0)
    app.processEvents()
    rows.append(("image map update after zoom (visible-point mask + tiles)", timed(view._update_image_map, repeat)))
    shown = len(view.thumbnail_rows())
    rows.append((f"frame, zoomed in ({shown} placeholder tiles, points outside culled)",
                 timed(view.plot.grab, repeat)))
    photo = QPixmap(256, 192)  # what the thumbnail cache holds: ~256 px JPEG thumbnails
    photo.fill(QColor("#6a8caf"))
    keys = [tile.key for tile in view.image_map.tiles()]
    rows.append((f"{shown} thumbnails arrive (scale to 64 px, once)",
                 timed(lambda: (view.image_map.forget_pixmaps(),
                                view.image_map.pixmaps_arrived(keys, lambda key: photo)), repeat)))
    rows.append((f"frame, zoomed in ({shown} thumbnails)", timed(view.plot.grab, repeat)))
    view.reset_view()
    app.processEvents()
    rows.append(("hover lookup (nearest point in pixels)", timed(lambda: view._point_at(centre), repeat * 10)))
    rows.append(("rectangle selection of ~1/4 of the map",
                 timed(lambda: view.select_in_rect(QRectF(x0, y0, (x1 - x0) / 2, (y1 - y0) / 2)), repeat)))
    lasso = np.column_stack([np.cos(t := np.linspace(0, 2 * np.pi, 200)), np.sin(t)]) * (x1 - x0) / 4
    rows.append(("lasso selection (200-vertex polygon, ~1/5 of the map)",
                 timed(lambda: view.select_in_polygon(lasso), repeat)))

    stock = pg.ScatterPlotItem(pxMode=True, pen=None, size=4)
    brushes = np.empty(16, object)
    brushes[:] = [pg.mkBrush(c) for c in pg.colormap.get("viridis").getLookupTable(nPts=16)]
    colour_index = rng.integers(0, 16, n)
    rows.append(("reference: stock ScatterPlotItem.setData(pos, data)",
                 timed(lambda: stock.setData(pos=layout.xy, data=np.arange(n)), repeat)))
    rows.append(("reference: stock ScatterPlotItem.setBrush(16 shared brushes)",
                 timed(lambda: stock.setBrush(brushes[colour_index]), repeat)))

    print(f"\nMap view, {n} points, median of {repeat} ({os.cpu_count()} cores, offscreen)\n")
    print("| step | ms |\n| --- | --- |")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    view.close()
    tasks.shutdown()


if __name__ == "__main__":
    main()
