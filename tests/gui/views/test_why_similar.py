"""Why similar? (issue 19): a result beside the query's examples, each with its heatmap."""

import numpy as np
import pytest
from PIL import Image

from explorer.gui.controllers import models as embedding
from explorer.gui.controllers.tasks import TaskKind
from explorer.gui.views.grid.why_similar import show_why_similar

from gui_helpers import rows_by_name, wait_until_ready


def test_why_similar_shows_the_result_and_each_example_with_its_share(qtbot, window, indexed_folder, lite0,
                                                                       tmp_path):
    embedding.remember_model(lite0)
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    state = window.state
    window.session.query_by_rows(rows_by_name(state, "cat-original.jpg", "cat-gray.jpg"))
    [row] = rows_by_name(state, "cat-flip.jpg")
    actions = [text for text, _ in window.query_view._result_actions]
    assert "Why similar?" in actions
    dialog = show_why_similar(window.session, row, window)
    qtbot.waitUntil(dialog.ready, timeout=120_000)
    captions = [w.text() for w in dialog.findChildren(type(dialog.status)) if "share of the similarity" in w.text()]
    assert len(captions) == 3  # the result, and each of the two examples
    shown = float(captions[0].rsplit(", ", 1)[1])
    expected = float(state.collection.vectors[row] @ state.query.vector)
    assert abs(shown - expected) < 1e-4  # the map sums to the similarity the app ranks by
    qtbot.waitUntil(lambda: dialog.width() > 3 * 300, timeout=5_000)  # laid out: three pictures wide
    out = tmp_path / "why.png"
    assert dialog.save_png(out)
    picture = np.asarray(Image.open(out).convert("RGB"))
    assert picture.shape[1] > 3 * 300 and picture.std() > 20  # three pictures side by side, not blank


def test_the_grid_overlays_each_visible_tiles_heatmap_and_toggles_at_once(qtbot, window, indexed_folder, lite0,
                                                                          tmp_path):
    embedding.remember_model(lite0)
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    state, grid = window.state, window.grid
    window.session.query_by_rows(rows_by_name(state, "rocket-original.jpg"))
    qtbot.waitUntil(lambda: all(grid.model.pixmap_at(p) is not None for p in range(28)), timeout=30_000)
    grid.why_similar.setChecked(True)
    assert grid.heat_opacity.isVisible() and grid.heat_legend.isVisible()
    paths = list(state.collection.paths)
    for path in paths:
        grid.heatmaps.image_for(path)  # what painting the tiles asks for
    qtbot.waitUntil(lambda: all(grid.heatmaps.grid_for(p) is not None for p in paths), timeout=120_000)
    for path in paths:  # each map sums to the similarity the grid shows on the tile
        row = state.collection.paths.index(path)
        assert abs(float(grid.heatmaps.grid_for(path).sum()) - float(state.query.scores[row])) < 1e-4
    overlaid = grid.view.viewport().grab().toImage()
    tasks_before = window.tasks.latest(TaskKind.HEATMAPS)
    grid.why_similar.setChecked(False)  # off and on again: no new work, the same picture
    plain = grid.view.viewport().grab().toImage()
    assert plain != overlaid
    grid.why_similar.setChecked(True)
    assert grid.view.viewport().grab().toImage() == overlaid
    assert window.tasks.latest(TaskKind.HEATMAPS) is tasks_before
    grid.grab().save(str(tmp_path / "grid.png"))


def test_query_by_a_region_drawn_on_an_example(qtbot, window, indexed_folder, lite0, tmp_path):
    from PySide6.QtWidgets import QDialogButtonBox

    from explorer.core.explain import region_vector

    embedding.remember_model(lite0)
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    state, panel = window.state, window.query_view
    window.session.query_by_rows(rows_by_name(state, "astronaut-original.jpg"))
    qtbot.waitUntil(lambda: len(panel._tiles) == 1, timeout=5_000)
    assert panel._tiles[0].region.toolTip().startswith("Query by a region")
    dialog = panel.pick_region(0)
    shuttle = (0.68, 0.0, 1.0, 0.55)  # the model of the shuttle beside the astronaut
    dialog.picker.set_region(shuttle)
    assert dialog.picker.region() == pytest.approx(shuttle, abs=0.01)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: bool(state.query.positives) and state.query.positives[0].name.endswith("(region)"), timeout=60_000)
    [example] = state.query.positives
    expected = region_vector(lite0, indexed_folder / "astronaut" / "astronaut-original.jpg", dialog.region, "crop")
    np.testing.assert_allclose(example.vector, expected, atol=1e-5)
    np.testing.assert_allclose(state.query.vector, expected, atol=1e-5)
    assert example.thumbnail  # the crop, as its tile


def test_a_page_of_maps_is_one_forward_pass_and_an_unreadable_file_gets_none(indexed_folder, tmp_path):
    """The worker decodes a page, runs it as one batch, and leaves out only what cannot be read."""
    from explorer.core.explain import feature_map
    from explorer.gui.controllers.jobs import page_maps

    names = [p.relative_to(indexed_folder).as_posix() for p in sorted(indexed_folder.rglob("*.jpg"))[:3]]
    folder = tmp_path / "page"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((indexed_folder / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    paths = [names[0], "broken.jpg", *names[1:]]
    maps = page_maps("efficientnet-lite0", folder, paths)
    assert [path for path, _ in maps] == paths and maps[1][1] is None
    for path, fmap in maps[:1] + maps[2:]:  # batched, yet each the map of its own image alone
        assert fmap.shape == (1280, 7, 7)
        assert np.abs(fmap - feature_map("efficientnet-lite0", folder / path)).max() < 1e-4
