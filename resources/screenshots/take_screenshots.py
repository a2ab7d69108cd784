"""Screenshots of the app's main states, to look at (not compared with anything).

    xvfb-run -a -s "-screen 0 1600x1000x24" python resources/screenshots/take_screenshots.py [OUT]

Opens the bundled sample in a fresh data folder and saves, under OUT (default
/tmp/explorer-screenshots): 1-indexing.png (progress, Cancel, the grid filling in), 2-ready.png
(grid and map, no query), 3-query.png (a dropped photo's results and distribution),
4-range.png (a similarity range shown in the grid), 5-map-similarity.png (the map coloured by
similarity, a rectangle selected on it filtering the grid), 6-image-map.png (zoomed in, points
as thumbnails), 7-why-similar.png (the cat query's heatmap over every visible tile),
8-why-similar-dialog.png (one result beside the example, each with its map). README's picture is one of these, copied to resources/screenshots/explorer.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="explorer-screenshots-")  # a first start
os.environ["XDG_CONFIG_HOME"] = os.path.join(os.environ["EXPLORER_DATA_DIR"], "config")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(out: Path) -> None:
    from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from explorer.gui.controllers.tasks import TaskKind
    from explorer.gui.main_window import MainWindow
    from explorer.resources import sample_folder

    app = QApplication([])
    out.mkdir(parents=True, exist_ok=True)
    window = MainWindow()
    window.resize(1500, 950)
    window.show()
    state = window.state

    def settle(seconds: float = 1.0) -> None:  # thumbnails load and paint
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(condition, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit("timed out")
            app.processEvents()
            time.sleep(0.01)

    def save(name: str) -> None:
        path = out / name
        window.grab().save(str(path))
        print(path)

    sample = sample_folder()
    window.open_folder(sample)
    wait(lambda: state.indexing.running and state.indexing.total and state.indexing.done >= 20)
    settle(0.3)
    save("1-indexing.png")
    wait(lambda: not state.indexing.running and state.layout is not None
         and window.tasks.latest(TaskKind.OPEN) is None and window.tasks.latest(TaskKind.LAYOUT) is None)
    settle()
    save("2-ready.png")

    photo = sample / "cat" / "cat-original.jpg"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    panel = window.query_view
    centre = panel.rect().center()
    for event in (QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier),
                  QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier)):
        app.sendEvent(panel, event)
    wait(lambda: state.query.scores is not None)
    settle()
    save("3-query.png")

    window.histograms.set_range(0.15, 0.25)
    settle()
    save("4-range.png")
    window.histograms.clear_range()

    view = window.map
    view.set_colour_mode("similarity")
    xy = state.layout.xy
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    view.select_in_rect(QRectF(x0, y0, (x1 - x0) / 2, (y1 - y0) / 2))
    settle()
    save("5-map-similarity.png")

    state.set_filter(None, "", "screenshots")
    view.set_colour_mode("label")
    [centre_xy] = state.layout.positions_of(state.collection.ids[state.query.top_rows()[:1]])[1]
    view.view_box.setRange(QRectF(centre_xy[0] - 1.5, centre_xy[1] - 1.5, 3, 3), padding=0)
    settle(1.5)
    save("6-image-map.png")

    from explorer.gui.views.grid.why_similar import show_why_similar

    view.view_box.autoRange()
    grid = window.grid
    grid.why_similar.setChecked(True)
    visible = [state.collection.paths[row] for row in state.query.top_rows()[:24]]
    wait(lambda: all(grid.heatmaps.grid_for(path) is not None for path in visible))
    settle()
    save("7-why-similar.png")
    dialog = show_why_similar(window.session, int(state.query.top_rows()[1]), window)
    wait(lambda: dialog.save_button.isEnabled())
    settle()
    dialog.grab().save(str(out / "8-why-similar-dialog.png"))
    print(out / "8-why-similar-dialog.png")
    dialog.close()
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/explorer-screenshots"))
