"""Named queries, negative examples, the histogram overlay and its summary, the label split:
real widgets against numpy and core's own functions on the same data."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from explorer.core import analysis
from explorer.core.query_book import QueryBook
from explorer.gui.controllers import models as embedding
from explorer.gui.state.named_queries import CURRENT
from gui_helpers import rows_by_name, wait_until_ready

SCREENSHOT = Path("/tmp/issue4-overlay.png")


@pytest.fixture
def panels(ready_window):
    return ready_window


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def query(qtbot, win, *names: str) -> list[int]:
    rows = rows_by_name(win.state, *names)
    win.session.query_by_rows(rows)
    qtbot.wait(20)  # views refresh on the next event-loop turn
    return rows


def numpy_ap(scores, relevant, exclude, k):
    """AP and precision@k by sorting, independent of core's rank arithmetic (no ties here)."""
    s, rel = scores[~exclude], relevant[~exclude]
    ranked = rel[np.argsort(-s, kind="stable")]
    hits = np.cumsum(ranked)
    positions = np.flatnonzero(ranked) + 1
    return float(np.mean(hits[positions - 1] / positions)), float(ranked[:k].mean())


def test_save_rename_delete_and_make_current(qtbot, ready_window, panels):
    state, named, book_panel = ready_window.state, panels.named_queries, panels.named_queries_view
    assert book_panel.hint.isVisible() and not book_panel.save_button.isEnabled()
    rows = query(qtbot, ready_window, "cat-original.jpg", "cat-gray.jpg")
    assert book_panel.save_button.isEnabled()

    assert book_panel.save_current("  cats ") == "cats"
    saved = named.book.get("cats")
    np.testing.assert_allclose([e.vector for e in saved.positives], state.collection.vectors[rows])
    assert [Path(e.path).name for e in saved.positives] == ["cat-original.jpg", "cat-gray.jpg"]
    assert (named.directory / "queries.json").is_file()
    item = book_panel.list.item(0)
    assert item.text() == "cats" and item.checkState() == Qt.CheckState.Checked

    # A taken name is refused, with a message instead of a crash.
    problems = []
    book_panel.problem.connect(problems.append)
    assert book_panel.save_current("cats") is None and "already" in problems[0]

    # Rename in place (as the editor does), then hide with the checkbox.
    item.setText("my cats")
    assert named.names() == ["my cats"] and QueryBook.load(named.directory).names() == ["my cats"]
    book_panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert named.visible_names() == [] and "my cats" in named.hidden

    # Another query, then back to the saved one.
    query(qtbot, ready_window, "rocket-original.jpg")
    book_panel.select("my cats")
    book_panel.current_button.click()
    qtbot.wait(20)
    assert [e.name for e in state.query.positives] == ["cat-original.jpg", "cat-gray.jpg"]
    np.testing.assert_allclose(state.query.vector, unit(state.collection.vectors[rows].mean(0)), atol=1e-6)

    book_panel.delete_button.click()
    assert named.names() == [] and QueryBook.load(named.directory).names() == []


def test_named_queries_round_trip_through_the_collection(qtbot, ready_window, panels):
    state, named = ready_window.state, panels.named_queries
    query(qtbot, ready_window, "coffee-original.jpg")
    panels.negatives.add_rows(rows_by_name(state, "cat-original.jpg"))
    state.query.set_negative_weight(0.75)
    named.save_current("coffee not cat")
    query(qtbot, ready_window, "rocket-original.jpg", "rocket-gray.jpg")
    named.save_current("rockets")
    before = {q.name: q.vector() for q in named.book}

    # Reopen the folder: the book is forgotten with the collection, then read back from disk.
    folder = state.folder
    ready_window.open_folder(folder)
    qtbot.waitUntil(lambda: state.collection is None or named.directory is None, timeout=5000)
    wait_until_ready(qtbot, ready_window)
    assert named.names() == ["coffee not cat", "rockets"]
    reread = named.book.get("coffee not cat")
    assert len(reread.negatives) == 1 and reread.negative_weight == 0.75
    for name, vector in before.items():
        np.testing.assert_allclose(named.book.get(name).vector(), vector, atol=1e-6)
    assert [panels.named_queries_view.list.item(i).text() for i in range(2)] == ["coffee not cat", "rockets"]


def test_negative_examples_make_the_rocchio_query(qtbot, ready_window, panels):
    state, strip = ready_window.state, panels.negatives
    # Folded while empty; unfolding shows how to add some.
    assert not strip.body.isVisible() and not strip.clear_button.isEnabled()
    strip.toggle.click()
    assert strip.hint.isVisible() and strip.toggle.arrowType() == Qt.ArrowType.DownArrow
    strip.toggle.click()
    positives = query(qtbot, ready_window, "coffee-original.jpg", "coffee-gray.jpg")
    negatives = rows_by_name(state, "cat-original.jpg", "astronaut-original.jpg")
    strip.add_rows(negatives)
    qtbot.wait(20)
    vectors = state.collection.vectors
    expected = unit(vectors[positives].mean(0) - 0.5 * vectors[negatives].mean(0))
    np.testing.assert_allclose(state.query.vector, expected, atol=1e-6)
    np.testing.assert_allclose(state.query.scores, vectors @ expected, atol=1e-5)
    assert len(strip._tiles) == 2 and strip.clear_button.isEnabled()
    assert strip.body.isVisible() and strip.toggle.text() == "Negatives (2)"  # unfolded by the addition

    strip.weight_spin.setValue(1.25)  # the slider follows, the query is re-made
    assert strip.weight_slider.value() == 125
    expected = unit(vectors[positives].mean(0) - 1.25 * vectors[negatives].mean(0))
    np.testing.assert_allclose(state.query.vector, expected, atol=1e-6)
    qtbot.wait(20)  # the histogram follows on the next turn
    np.testing.assert_allclose(ready_window.histograms.histogram.counts,
                               np.histogram(np.clip(vectors @ expected, -1, 1), 400, (-1, 1))[0])

    # Adding a positive keeps the negatives in the query.
    ready_window.session.query_by_rows(rows_by_name(state, "coffee-flip.jpg"), replace=False)
    rows = positives + rows_by_name(state, "coffee-flip.jpg")
    np.testing.assert_allclose(state.query.vector,
                               unit(vectors[rows].mean(0) - 1.25 * vectors[negatives].mean(0)), atol=1e-6)

    strip._tiles[0].remove.click()
    np.testing.assert_allclose(state.query.vector,
                               unit(vectors[rows].mean(0) - 1.25 * vectors[negatives[1:]].mean(0)), atol=1e-6)
    state.query.clear()
    assert state.query.negatives == () and state.query.vector is None


def test_results_menu_offers_negative(qtbot, ready_window, panels):
    panel = ready_window.query_view
    query(qtbot, ready_window, "cat-original.jpg")
    actions = dict(panel._result_actions)
    assert "Add as negative example" in actions
    row = panel.results.item(3).data(Qt.ItemDataRole.UserRole)
    actions["Add as negative example"]([row])
    assert [e.path for e in ready_window.state.query.negatives] == [ready_window.state.path_of(row)]


def test_overlay_counts_summary_threshold_and_cumulative(qtbot, ready_window, panels):
    state, named, overlay, view = ready_window.state, panels.named_queries, panels.overlay, ready_window.histograms
    vectors = state.collection.vectors
    for name, files in (("cats", ("cat-original.jpg",)), ("rockets", ("rocket-original.jpg", "rocket-gray.jpg"))):
        query(qtbot, ready_window, *files)
        named.save_current(name)
    query(qtbot, ready_window, "coffee-original.jpg")
    qtbot.wait(20)
    independent = {
        "cats": vectors @ unit(vectors[rows_by_name(state, "cat-original.jpg")].mean(0)),
        "rockets": vectors @ unit(vectors[rows_by_name(state, "rocket-original.jpg", "rocket-gray.jpg")].mean(0)),
        CURRENT: vectors @ unit(vectors[rows_by_name(state, "coffee-original.jpg")].mean(0)),
    }
    assert set(overlay.curves) == {"cats", "rockets"}
    for name in ("cats", "rockets"):
        x, y = overlay.curves[name].getData()
        counts, edges = np.histogram(np.clip(independent[name], -1, 1), bins=400, range=(-1, 1))
        np.testing.assert_array_equal(y, counts)
        np.testing.assert_allclose(x, edges)
    legend = overlay.legend_names()
    # A query of one label's images is split by label (see the label test).
    assert legend == ["current query: coffee", "current query: other labels", "cats", "rockets"]
    overlay.split_box.setChecked(False)
    assert overlay.legend_names() == [CURRENT, "cats", "rockets"]
    assert "rockets" in overlay.legend.text() and overlay.legend.isVisibleTo(overlay.panel)

    # Summary table: core's summarise on each query's scores, at the current K and threshold.
    def table():
        return {overlay.table.item(r, 0).text(): [overlay.table.item(r, c).text() for c in range(1, 5)]
                for r in range(overlay.table.rowCount())}

    def check(threshold):
        shown = table()
        assert list(shown) == [CURRENT, "cats", "rockets"]
        for name, scores in independent.items():
            s = analysis.summarise(scores, state.query.top_k, threshold)
            assert shown[name] == [f"{s.mean:.3f}", f"{s.median:.3f}", f"{s.top_k_mean:.3f}",
                                   f"{int((scores >= threshold).sum())} of 28"]
            assert overlay.summaries[name].above_threshold == s.above_threshold
    check(0.5)
    overlay.threshold_spin.setValue(0.3)
    assert overlay.threshold_line.value() == pytest.approx(0.3)
    check(0.3)
    overlay.threshold_line.setValue(0.42)  # dragging the line moves the spin box
    assert overlay.threshold_spin.value() == pytest.approx(0.42)
    check(0.42)
    state.query.set_top_k(5)
    qtbot.wait(20)
    check(0.42)
    assert overlay.table.horizontalHeaderItem(3).text() == "top-5 mean"

    # Cumulative: every curve becomes its ECDF.
    view.mode_button.click()
    qtbot.wait(20)
    assert view.cumulative
    for name, curve in [(CURRENT, view.curve), ("cats", overlay.curves["cats"])]:
        x, y = curve.getData()
        np.testing.assert_allclose(x, np.sort(independent[name]), atol=1e-5)
        np.testing.assert_allclose(y, np.arange(1, 29) / 28)
    assert view.grab().save("/tmp/issue4-cumulative.png")
    view.mode_button.click()
    qtbot.wait(20)
    assert not view.cumulative and len(overlay.curves["cats"].getData()[0]) == 401

    # Hiding a query removes its curve, legend entry and table row.
    named.set_visible("cats", False)
    qtbot.wait(20)
    assert set(overlay.curves) == {"rockets"} and list(table()) == [CURRENT, "rockets"]

    # With no current query, the visible named queries are still plotted.
    state.query.clear()
    qtbot.wait(20)
    assert view.stack.currentWidget() is view.plot and list(table()) == ["rockets"]

    query(qtbot, ready_window, "coffee-original.jpg")
    named.set_visible("cats", True)
    ready_window.resize(1400, 1000)
    ready_window.resizeDocks([ready_window.histogram_dock], [560], Qt.Orientation.Vertical)
    qtbot.wait(50)
    image = view.grab().toImage()
    assert image.save(str(SCREENSHOT))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(96, 64)
    assert len({small.pixel(x, y) for x in range(96) for y in range(64)}) > 20


def test_label_split_and_average_precision(qtbot, ready_window, panels):
    state, overlay, view = ready_window.state, panels.overlay, ready_window.histograms
    rows = query(qtbot, ready_window, "cat-original.jpg", "cat-gray.jpg")
    qtbot.wait(20)
    labels = analysis.labels_of(state.collection.paths)
    exclude = np.isin(np.arange(28), rows)
    scores = state.query.scores
    same = scores[(labels == "cat") & ~exclude]
    other = scores[labels != "cat"]
    assert len(same) == 5 and len(other) == 21
    assert overlay.same_curve.isVisible() and overlay.other_curve.isVisible() and not view.curve.isVisible()
    np.testing.assert_array_equal(overlay.same_curve.getData()[1], np.histogram(np.clip(same, -1, 1), 400, (-1, 1))[0])
    np.testing.assert_array_equal(overlay.other_curve.getData()[1], np.histogram(np.clip(other, -1, 1), 400, (-1, 1))[0])

    quality = overlay.quality
    k = state.query.top_k
    assert quality.label == "cat" and quality.k == k
    assert quality.average_precision == analysis.average_precision(scores, labels == "cat", exclude)
    assert quality.precision_at_k == analysis.precision_at_k(scores, labels == "cat", k, exclude)
    ap, p_at_k = numpy_ap(scores, labels == "cat", exclude, k)
    assert quality.average_precision == pytest.approx(ap) and quality.precision_at_k == pytest.approx(p_at_k)
    assert f"AP {ap:.3f}" in overlay.quality_label.text() and f"precision@{k} {p_at_k:.3f}" in overlay.quality_label.text()

    ready_window.resize(1400, 1000)
    ready_window.resizeDocks([ready_window.histogram_dock], [560], Qt.Orientation.Vertical)
    qtbot.wait(50)
    assert view.grab().save("/tmp/issue4-label-split.png")

    overlay.split_box.setChecked(False)
    assert view.curve.isVisible() and not overlay.same_curve.isVisible()
    overlay.split_box.setChecked(True)

    # Examples of two labels: no split, and a hint says why.
    ready_window.session.query_by_rows(rows_by_name(state, "rocket-original.jpg"), replace=False)
    qtbot.wait(20)
    assert overlay.quality is None and view.curve.isVisible() and not overlay.same_curve.isVisible()
    assert "one subfolder" in overlay.quality_label.text()


def test_drops_on_the_negative_strip(qtbot, ready_window, panels, lite0, tmp_path):
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from explorer.core.embed import embed_query_images

    embedding.remember_model(lite0)
    state, strip = ready_window.state, panels.negatives
    positives = query(qtbot, ready_window, "coffee-original.jpg")
    outside = tmp_path / "rocket elsewhere.png"
    with Image.open(state.folder / "rocket" / "rocket-original.jpg") as im:
        im.convert("RGB").resize((200, 150)).save(outside)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(state.folder / "cat" / "cat-original.jpg")),
                  QUrl.fromLocalFile(str(outside))])
    pos = strip.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(strip, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(strip, event)
    assert event.isAccepted() and event.dropAction() == Qt.DropAction.CopyAction
    qtbot.waitUntil(lambda: len(ready_window.state.query.negatives) == 2 and not strip.embedding, timeout=60_000)
    assert state.query.positives[0].name == "coffee-original.jpg" and len(state.query.positives) == 1  # not a positive
    vectors = state.collection.vectors
    negatives = np.vstack([vectors[rows_by_name(state, "cat-original.jpg")],
                           embed_query_images(lite0, [outside])])
    expected = unit(vectors[positives].mean(0) - 0.5 * negatives.mean(0))
    np.testing.assert_allclose(state.query.vector, expected, atol=1e-5)
    assert ready_window.state.query.negatives[1].thumbnail  # the outside image gets its own preview


def test_a_damaged_queries_file_is_reported_not_fatal(qtbot, ready_window):
    from PySide6.QtWidgets import QMessageBox

    directory = ready_window.state.collection.collection.saved_dir
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "queries.json").write_text("{not json")
    panels = ready_window
    panels.named_queries.directory = None  # as when the collection is opened afresh
    panels.named_queries.load()
    dialogs = [w for w in ready_window.findChildren(QMessageBox) if w.objectName() == "errorDialog" and w.isVisible()]
    assert len(dialogs) == 1 and "could not be read" in dialogs[0].text()
    assert panels.named_queries.names() == [] and panels.named_queries.directory == directory
    # Saving replaces the damaged file with a good one.
    query(qtbot, ready_window, "cat-original.jpg")
    panels.named_queries.save_current("cats")
    assert QueryBook.load(directory).names() == ["cats"]


def test_named_curves_follow_indexing(qtbot, ready_window, panels, lite0):
    import shutil

    state, overlay = ready_window.state, panels.overlay
    embedding.remember_model(lite0)  # no second model load in the worker
    query(qtbot, ready_window, "cat-original.jpg")
    panels.named_queries.save_current("cats")
    state.query.clear()
    qtbot.wait(20)
    assert int(overlay.curves["cats"].getData()[1].sum()) == 28
    shutil.copy2(state.folder / "cat" / "cat-crop.jpg", state.folder / "cat" / "cat-crop-copy.jpg")
    ready_window.session.reindex()
    qtbot.waitUntil(lambda: len(state.collection) == 29 and not state.indexing.running, timeout=120_000)
    qtbot.wait(50)
    vectors = state.collection.vectors
    expected = vectors @ unit(vectors[rows_by_name(state, "cat-original.jpg")].mean(0))
    np.testing.assert_array_equal(overlay.curves["cats"].getData()[1],
                                  np.histogram(np.clip(expected, -1, 1), 400, (-1, 1))[0])
    assert overlay.table.item(0, 4).text().endswith("of 29")
