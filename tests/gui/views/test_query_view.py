"""The query panel with real widgets: drops, paste, examples, results against core's answer."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMessageBox

from explorer.core import analysis
from explorer.resources import sample_folder
from explorer.gui.controllers import models as embedding
from explorer.gui.views.query.query_view import EMPTY_HINT, classify_paths, paths_in_text
from gui_helpers import rows_by_name, wait_until_ready

SCREENSHOT = Path("/tmp/query.png")


def file_mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drop(widget, mime: QMimeData) -> bool:
    """Deliver a real drag-enter then drop, as a file manager would; True if the enter was accepted."""
    pos = widget.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted() and event.dropAction() == Qt.DropAction.CopyAction
    return True


def error_dialogs(win):
    return [w for w in win.findChildren(QMessageBox) if w.objectName() == "errorDialog" and w.isVisible()]


def outside_cat(tmp_path: Path) -> Path:
    """A cat photo from outside the collection (resized, so it is no exact copy of an indexed file)."""
    indexed = sample_folder() / "cat" / "cat-original.jpg"
    out = tmp_path / "elsewhere" / "my cat.jpg"
    out.parent.mkdir()
    with Image.open(indexed) as im:
        im.convert("RGB").resize((im.width * 2 // 3, im.height * 2 // 3)).save(out, quality=90)
    return out


def wait_settled(qtbot, win) -> None:
    """Examples embedded and every view refreshed (refreshes are coalesced to the next turn)."""
    panel = win.query_view
    qtbot.waitUntil(lambda: not panel.embedding, timeout=60_000)
    qtbot.wait(20)


def assert_not_blank(widget, path: Path) -> None:
    image = widget.grab().toImage()
    assert image.save(str(path))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(64, 64)
    colours = {small.pixel(x, y) for x in range(64) for y in range(64)}
    assert len(colours) > 20, f"{path} looks blank ({len(colours)} colours)"


@pytest.fixture
def win(ready_window, lite0):
    embedding.remember_model(lite0)  # the app-wide model cache: no second load in the worker
    return ready_window


def test_empty_panel_says_what_to_do(window):
    panel = window.query_view
    assert panel.hint.text() == EMPTY_HINT and panel.hint.isVisible() and not panel.scroll_area.isVisible()
    assert panel.results.count() == 0 and not panel.clear_button.isEnabled()
    assert not drop(panel, QMimeData())  # nothing to use: the drag is refused
    assert panel.grab().toImage().save("/tmp/query_empty.png")
    window.grab().toImage().save("/tmp/window_empty.png")


def test_drop_outside_file_embeds_it_and_results_match_core(qtbot, win, tmp_path):
    state, panel = win.state, win.query_view
    photo = outside_cat(tmp_path)
    assert drop(panel, file_mime(photo))
    qtbot.waitUntil(lambda: len(state.query.positives) == 1, timeout=60_000)
    wait_settled(qtbot, win)
    example = state.query.positives[0]
    assert example.name == "my cat.jpg" and example.path == photo and example.thumbnail
    assert len(panel._tiles) == 1 and not panel.hint.isVisible() and panel.scroll_area.isVisible()

    # Results: exactly core's top K, in order, with their scores.
    k = state.query.top_k
    hits = state.collection.search(state.query.vector, k, exact=True)
    folder = state.collection.folder
    assert [folder / p for p in panel.result_paths()] == [h.path for h in hits]
    assert panel.results.count() == k
    first = panel.results.item(0).text().split("\n")
    assert first[0] == f"{hits[0].score:.3f}" and first[1] == hits[0].path.name
    assert hits[0].path.parent.name == "cat"  # the features do retrieve the cat

    # The histogram of the same query: every image counted once, as numpy counts them.
    view = win.histograms
    hist = view.histogram
    scores = state.collection.vectors @ state.query.vector
    counts, edges = np.histogram(np.clip(scores, -1, 1), bins=analysis.HISTOGRAM_BINS, range=(-1, 1))
    np.testing.assert_array_equal(hist.counts, counts)
    np.testing.assert_allclose(hist.edges, edges)
    x, y = view.curve.getData()
    np.testing.assert_array_equal(y, counts)
    assert len(x) == len(y) + 1 and int(y.sum()) == len(state.collection) == 28

    # Thumbnails arrive asynchronously; then the panel must show pictures, not placeholders.
    qtbot.waitUntil(lambda: all(win.thumbnails.cached(p) is not None for p in panel.result_paths()),
                    timeout=30_000)
    qtbot.wait(50)
    win.query_dock.widget().resize(420, 700)
    assert_not_blank(panel, SCREENSHOT)


def test_drop_grid_image_uses_its_vector_without_the_model(qtbot, ready_window, monkeypatch):
    state, panel, session = ready_window.state, ready_window.query_view, ready_window.session
    monkeypatch.setattr(session, "query_by_files", lambda *a, **k: pytest.fail("no embedding expected"))
    [row] = rows_by_name(state, "cat-flip.jpg")
    path = state.collection.folder / state.collection.paths[row]
    assert drop(panel, file_mime(path))
    # Synchronous: the stored vector is used at once.
    assert len(state.query.positives) == 1 and state.query.positives[0].path == path
    np.testing.assert_array_equal(state.query.positives[0].vector, state.collection.vectors[row])
    qtbot.wait(20)
    assert panel.result_paths()[0] == state.collection.paths[row]
    # Dropping it again does not add a duplicate.
    assert drop(panel, file_mime(path))
    assert len(state.query.positives) == 1 and "Already in the query" in panel.message.text()


def test_unusable_drops_show_an_error_and_the_app_keeps_working(qtbot, win, tmp_path):
    state, panel = win.state, win.query_view
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a photograph")
    with qtbot.waitSignal(win.session.query_failed, timeout=60_000) as failed:
        assert drop(panel, file_mime(fake))
    assert "notes.jpg" in failed.args[0]
    qtbot.waitUntil(lambda: bool(error_dialogs(win)))
    wait_settled(qtbot, win)
    assert state.query.positives == ()

    text = tmp_path / "readme.txt"
    text.write_text("hello")
    with qtbot.waitSignal(win.session.query_failed) as failed:  # refused before any model work
        drop(panel, file_mime(text, tmp_path))
    assert "readme.txt: not an image file" in failed.args[0] and "is a folder" in failed.args[0]

    # Still working: a good drop after the bad ones.
    [row] = rows_by_name(state, "coffee-original.jpg")
    drop(panel, file_mime(state.path_of(row)))
    assert [e.name for e in state.query.positives] == ["coffee-original.jpg"]
    for box in error_dialogs(win):
        box.close()


def test_paste_image_and_paste_file_path(qtbot, win, tmp_path):
    state, panel = win.state, win.query_view
    clipboard = QApplication.clipboard()
    image = QImage(str(outside_cat(tmp_path)))
    assert not image.isNull()
    clipboard.setImage(image)
    panel.paste()
    qtbot.waitUntil(lambda: len(state.query.positives) == 1, timeout=60_000)
    assert state.query.positives[0].name == "pasted image" and state.query.positives[0].path is None
    assert state.query.positives[0].thumbnail  # the pasted pixels show as the example's tile
    wait_settled(qtbot, win)
    assert Path(panel.result_paths()[0]).parent.name == "cat"

    [row] = rows_by_name(state, "rocket-original.jpg")
    clipboard.setText(str(state.path_of(row)))
    panel.paste()  # a path copied as text: an indexed image, used at once
    assert [e.name for e in state.query.positives] == ["pasted image", "rocket-original.jpg"]
    qtbot.wait(20)
    assert all(not t.image.pixmap().isNull() for t in panel._tiles)
    panel.grab().toImage().save("/tmp/query_examples.png")

    clipboard.clear()
    with qtbot.waitSignal(win.session.query_failed):
        panel.paste()


def test_remove_example_clear_and_top_k(qtbot, ready_window):
    state, panel = ready_window.state, ready_window.query_view
    cat, rocket = rows_by_name(state, "cat-original.jpg", "rocket-original.jpg")
    ready_window.session.query_by_rows([cat, rocket])
    qtbot.wait(20)
    assert [t.remove.isVisible() for t in panel._tiles] == [True, True]

    qtbot.mouseClick(panel._tiles[0].remove, Qt.MouseButton.LeftButton)  # remove the cat
    assert [e.name for e in state.query.positives] == ["rocket-original.jpg"]
    np.testing.assert_allclose(state.query.vector, state.collection.vectors[rocket], atol=1e-6)
    qtbot.wait(20)
    assert len(panel._tiles) == 1
    assert panel.result_paths()[0] == state.collection.paths[rocket]

    panel.k_spin.setValue(5)
    assert state.query.top_k == 5
    qtbot.wait(20)
    assert panel.results.count() == 5
    assert panel.result_paths() == [state.collection.paths[r] for r in state.query.top_rows()]
    assert ready_window.histograms.cutoff.label.format == "top 5"

    panel.clear_button.click()
    assert state.query.positives == () and state.query.vector is None
    qtbot.wait(20)
    assert panel.results.count() == 0 and panel.hint.isVisible()


def test_clicking_a_result_selects_it_and_double_click_adds_it(qtbot, ready_window):
    state, panel = ready_window.state, ready_window.query_view
    [cat] = rows_by_name(state, "cat-original.jpg")
    ready_window.session.query_by_rows([cat])
    qtbot.wait(20)
    results = panel.results
    item = results.item(1)
    row = item.data(Qt.ItemDataRole.UserRole)
    centre = results.visualItemRect(item).center()
    with qtbot.waitSignal(state.selection_changed) as changed:
        qtbot.mouseClick(results.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert changed.args == ["query"] and state.selection.tolist() == [row]

    qtbot.mouseDClick(results.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert [e.path for e in state.query.positives] == [state.path_of(cat), state.path_of(row)]

    # A selection made elsewhere shows in the results without echoing back.
    other = panel.results.item(3).data(Qt.ItemDataRole.UserRole)
    qtbot.wait(20)
    echoes = []
    state.selection_changed.connect(echoes.append)
    state.select([other], "grid")
    selected = [i.data(Qt.ItemDataRole.UserRole) for i in panel.results.selectedItems()]
    assert selected == [other] and echoes == ["grid"]

    # Result drags carry file URLs (like the grid's), so they can be dropped back as examples.
    mime = results.mimeData([panel.results.item(3)])
    assert [Path(u.toLocalFile()) for u in mime.urls()] == [state.path_of(other)]


def test_classify_paths_and_pasted_text(ready_window, tmp_path):
    c = ready_window.state.collection
    [row] = rows_by_name(ready_window.state, "cat-gray.jpg")
    outside = tmp_path / "x.PNG"
    Image.new("RGB", (8, 8)).save(outside, "PNG")
    (tmp_path / "a.doc").write_text("x")
    rows, files, problems = classify_paths(
        [c.folder / c.paths[row], outside, tmp_path / "a.doc", tmp_path / "gone.jpg"], c)
    assert rows == [row] and files == [outside]
    assert [p.split(":")[0] for p in problems] == ["a.doc", str(tmp_path / "gone.jpg")]
    text = f"{outside}\nnot a path\n{QUrl.fromLocalFile(str(c.folder / c.paths[row])).toString()}\n"
    assert paths_in_text(text) == [outside, c.folder / c.paths[row]]


def test_files_dropped_anywhere_on_the_window(qtbot, win, tmp_path):
    """A file manager's drop on the grid (not the query panel) still queries; a folder opens."""
    state = win.state
    grid_viewport = win.grid.findChild(QAbstractItemView).viewport()
    [row] = rows_by_name(state, "cat-flip.jpg")
    path = state.collection.folder / state.collection.paths[row]
    assert drop(grid_viewport, file_mime(path))  # the grid ignores it, the window takes it
    assert [e.path for e in state.query.positives] == [path]
    qtbot.waitUntil(lambda: win.query_view.result_paths()[:1] == [state.collection.paths[row]])

    other = tmp_path / "other photos"
    other.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(other / "red.png")
    assert drop(grid_viewport, file_mime(other))
    assert state.folder == other.resolve()
    assert win.windowTitle() == "Explorer \u2014 other photos"
    wait_until_ready(qtbot, win, layout=False)
    assert state.collection.paths == ["red.png"]
