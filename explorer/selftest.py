"""`explorer --self-test`: the whole app, offscreen, on the bundled sample; exit status 0 if it works.

The installer build runs it against the frozen app, so a bundle that lacks a module, a Qt plugin,
the model's weights or the sample fails the build instead of failing on a user's desktop. It
opens the window, indexes the sample, drops a photo on the query panel as a file manager would,
checks that the photo's variants come back first, waits for the map and checks that the window
drew something. Its index and settings go to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

QUERY = ("cat", "cat-original.jpg")  # a photo of the sample whose six variants must come first
TIMEOUT_S = 600.0


class SelfTestFailed(Exception):
    pass


def main() -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # runs on a build machine with no display
    scratch = Path(tempfile.mkdtemp(prefix="explorer-self-test-"))
    os.environ["EXPLORER_DATA_DIR"] = str(scratch / "data")  # never the user's index
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")  # nor their settings (Linux)
    os.environ["EXPLORER_CACHE_DIR"] = str(scratch / "cache")  # an installer ships its graphs
    started = time.perf_counter()
    try:
        _run(lambda message: print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True))
    except SelfTestFailed as failure:
        print(f"self-test FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"self-test passed in {time.perf_counter() - started:.1f} s")
    return 0


def _run(say: Callable[[str], None]) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from .gui.main_window import MainWindow
    from .gui.controllers.tasks import TaskKind
    from .resources import sample_folder

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("Explorer")
    app.setApplicationName("Explorer self-test")  # its own settings, on every platform
    sample = sample_folder()
    photos = sorted(p for p in sample.rglob("*.jpg"))
    say(f"Qt {app.platformName()}, sample {sample} ({len(photos)} photos)")

    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    state = window.state
    failures: list[str] = []
    window.tasks.failed.connect(lambda kind, error: failures.append(f"{kind.name}: {error!r}"))
    window.session.query_failed.connect(failures.append)
    try:
        window.open_folder(sample)
        _wait(app, lambda: state.collection is not None and not state.indexing.running
              and window.tasks.latest(TaskKind.OPEN) is None, "indexing the sample", failures)
        indexed = len(state.collection)
        say(f"indexed {indexed} images with {state.model} on {state.backend_in_use}")
        if indexed != len(photos):
            raise SelfTestFailed(f"indexed {indexed} of {len(photos)} sample photos")
        _check_backend(state.backend_in_use, Path(os.environ["EXPLORER_CACHE_DIR"]))

        query = sample.joinpath(*QUERY)
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(query))])
        panel = window.query_view
        centre = panel.rect().center()
        enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        app.sendEvent(panel, enter)
        if not enter.isAccepted():
            raise SelfTestFailed("the query panel refused a dragged image file")
        app.sendEvent(panel, QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime,
                                        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
        _wait(app, lambda: state.query.scores is not None, "the dropped photo's query", failures)
        best = [state.collection.paths[r] for r in state.query.top_rows()[:7]]
        say(f"dropped {query.name}: top results {', '.join(Path(p).name for p in best)}")
        if best[0] != "/".join(QUERY) or sum(p.startswith(QUERY[0] + "/") for p in best) < 6:
            raise SelfTestFailed(f"{query.name} did not find itself and its variants first: {best}")

        _wait(app, lambda: state.layout is not None and window.tasks.latest(TaskKind.LAYOUT) is None,
              "the map layout", failures)
        say(f"map laid out ({len(state.layout.ids)} points)")
        image = window.grab().toImage().scaled(160, 100)
        colours = {image.pixel(x, y) for x in range(160) for y in range(100)}
        if len(colours) < 50:
            raise SelfTestFailed(f"the window looks blank ({len(colours)} colours)")
        say(f"window drawn ({len(colours)} colours in a 160x100 thumbnail of it)")
    finally:
        window.close()
        app.processEvents()


def _check_backend(in_use: str, cache: Path) -> None:
    """The fastest backend ran (a bundle missing ONNX Runtime would quietly fall back to torch),
    and a frozen app used the graph it ships instead of exporting one."""
    from .core import backends

    expected = backends.describe(backends.preference(backends.AUTO)[0])
    if not in_use.startswith(expected):
        raise SelfTestFailed(f"indexing ran on {in_use or 'nothing'}, not on {expected}")
    if getattr(sys, "frozen", False) and (cache / "graphs").exists():
        raise SelfTestFailed("the frozen app exported the default model's graph instead of "
                             "using the one it ships")


def _wait(app, condition: Callable[[], bool], what: str, failures: list[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if failures:
            raise SelfTestFailed(f"{what}: {failures[0]}")
        if time.monotonic() > deadline:
            raise SelfTestFailed(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)
