"""Compare representations: indexing with another one from the GUI, and the same query side by
side under two representations, against core computed directly on each collection."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from explorer.core import analysis
from explorer.core.embed import embed_query_images
from explorer.core.backbones import list_specs
from explorer.core.search import SearchIndex
from explorer.core.store import indexed_models
from explorer.gui.controllers import models as embedding
from explorer.gui.controllers.tasks import TaskKind
from explorer.gui.views.analysis.representations_view import offline_model_names
from explorer.resources import sample_folder
from gui_helpers import rows_by_name

SCREENSHOT = Path("/tmp/issue4-representations.png")
LAYER = "efficientnet-lite0@blocks.6"


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture
def panels(ready_window, lite0):
    embedding.remember_model(lite0)
    return ready_window


def test_offline_names_are_the_registry_s_available_ones():
    names = offline_model_names()
    assert names == [s.name for s in list_specs() if s.is_available_offline()]
    assert "efficientnet-lite0" in names and LAYER in names


def test_a_query_is_compared_only_once_its_tab_is_in_front(qtbot, ready_window, panels):
    """Behind the distribution's tab the view is 'visible' to Qt but not on screen: a new query
    waits there (each side opens its collection and evaluates it), and runs once its tab is chosen."""
    view, state = panels.representations, ready_window.state
    panels.histogram_dock.raise_()
    qtbot.waitUntil(lambda: not view.looked_at())
    started = []
    original = ready_window.session.represent
    ready_window.session.represent = lambda *a, **k: (started.append(a[1]), original(*a, **k))[1]
    ready_window.session.query_by_rows(rows_by_name(state, "cat-original.jpg"))
    qtbot.wait(600)  # well past the view's debounce
    assert started == [] and view.isVisible()
    panels.representations_dock.raise_()
    qtbot.waitUntil(lambda: len(started) >= 1, timeout=5_000)
    qtbot.waitUntil(lambda: not ready_window.tasks.running(TaskKind.REPRESENT), timeout=120_000)
    assert "A" in view.results


def test_index_with_another_representation_then_compare(qtbot, ready_window, panels, tmp_path):
    view, state = panels.representations, ready_window.state
    folder = state.folder
    assert [view.models_list.item(i).text() for i in range(view.models_list.count())] == \
        ["efficientnet-lite0 (open)"]
    combo = [view.index_combo.itemText(i) for i in range(view.index_combo.count())]
    assert "efficientnet-lite0" not in combo and LAYER in combo  # the open one is the session's

    view.index_combo.setCurrentText(LAYER)
    view.index_button.click()
    assert view.indexing and view.progress.isVisible() and not view.index_button.isEnabled()
    qtbot.waitUntil(lambda: not view.indexing, timeout=300_000)
    assert sorted(indexed_models(folder)) == sorted(["efficientnet-lite0", LAYER])
    assert LAYER in [view.models_list.item(i).text() for i in range(view.models_list.count())]
    assert "28 new" in view.index_status.text() and not view.progress.isVisible()

    # The current query: two indexed cats and a cat from outside the folder.
    outside = tmp_path / "elsewhere" / "my cat.jpg"
    outside.parent.mkdir()
    with Image.open(sample_folder() / "cat" / "cat-original.jpg") as im:
        im.convert("RGB").resize((im.width // 2, im.height // 2)).save(outside, quality=90)
    rows = rows_by_name(state, "cat-original.jpg", "cat-gray.jpg")
    ready_window.session.query_by_rows(rows)
    ready_window.query_view.add_paths([outside])
    qtbot.waitUntil(lambda: len(state.query.positives) == 3, timeout=60_000)

    view.combo_a.setCurrentText("efficientnet-lite0")
    view.combo_b.setCurrentText(LAYER)
    panels.representations_dock.show()
    panels.representations_dock.raise_()
    view.compare()
    qtbot.waitUntil(lambda: set(view.results) == {"A", "B"}
                    and view.results["B"].model == LAYER and view.results["A"].evaluation is not None
                    and not ready_window.tasks.running(TaskKind.REPRESENT), timeout=120_000)

    # A: the open representation, so exactly the window's own scores.
    a = view.results["A"]
    np.testing.assert_allclose(a.scores, state.query.scores, atol=1e-5)
    np.testing.assert_array_equal(a.top_rows, analysis.ranking(state.query.scores, state.query.top_k))

    # B: the same example images under the other layer (indexed ones looked up by path there,
    # the outside one embedded with that model), as core computes it directly.
    b = view.results["B"]
    index = SearchIndex.open(folder, LAYER)
    try:
        relative = [state.collection.paths[r] for r in rows]
        there = [index.paths.index(p) for p in relative]
        outside_vector = embed_query_images(embedding.loaded_model(LAYER), [outside])[0]
        query = unit(np.vstack([index.vectors[there], outside_vector[None]]).mean(0))
        expected = index.vectors @ query
        assert index.vectors.shape[1] == 320
        np.testing.assert_allclose(b.scores, expected, atol=1e-5)
        assert b.paths == index.paths
        np.testing.assert_array_equal(b.top_rows, analysis.ranking(expected, state.query.top_k))
        expected_eval = analysis.evaluate(index.vectors, analysis.labels_of(index.paths), k=10)
        assert b.evaluation.to_json() == expected_eval.to_json()
    finally:
        index.close()
    c = state.collection
    assert a.evaluation.to_json() == analysis.evaluate(c.vectors, analysis.labels_of(c.paths), k=10).to_json()

    # Shown: histograms on one axis, the top lists, the eval numbers.
    for side, result in ((view.side_a, a), (view.side_b, b)):
        np.testing.assert_array_equal(side.curve.getData()[1], np.histogram(np.clip(result.scores, -1, 1), 400, (-1, 1))[0])
        assert side.top_paths() == [result.paths[r] for r in result.top_rows]
        assert side.top.count() == state.query.top_k
        o = result.evaluation.overall
        assert f"mAP {o.mean_average_precision:.3f}" in side.evaluation_label.text()
        assert result.model in side.title.text()
    ranges = [s.plot.getPlotItem().getViewBox().viewRange()[0] for s in (view.side_a, view.side_b)]
    assert ranges[0] == pytest.approx(ranges[1])

    # The evaluation is computed once per representation, then reused.
    state.query.set_top_k(5)
    view.compare()
    qtbot.waitUntil(lambda: view.side_a.top.count() == 5 and view.side_b.top.count() == 5, timeout=60_000)
    assert view.results["B"].evaluation.to_json() == b.evaluation.to_json()

    ready_window.resize(1500, 1000)
    ready_window.resizeDocks([panels.representations_dock], [560], Qt.Orientation.Vertical)
    qtbot.wait(1500)  # thumbnails of the top lists
    image = view.grab().toImage()
    assert image.save(str(SCREENSHOT))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(96, 64)
    assert len({small.pixel(i, j) for i in range(96) for j in range(64)}) > 20


def test_compare_needs_a_query(qtbot, ready_window, panels):
    view = panels.representations
    view.compare()
    assert "Add example images" in view.status.text()
