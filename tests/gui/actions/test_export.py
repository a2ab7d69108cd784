"""Exports: the pure writers (CSV, JSON, copies, groups) and File > Export on a real window."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from explorer.core import analysis
from explorer.core.export import (
    copy_into_folder, free_name, read_list, write_csv, write_groups_json, write_json, write_list,
)
from gui_helpers import rows_by_name

# --- pure writers --------------------------------------------------------------------------


def test_csv_and_json_hold_exactly_the_rows_and_scores(tmp_path):
    paths = [tmp_path / "a b.jpg", tmp_path / "x,y.png", tmp_path / "ü.jpg"]
    scores = np.array([0.9, 0.123456789, -0.5], np.float32)
    write_csv(paths, scores.tolist(), tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["rank", "path", "score"]
    assert [r[1] for r in rows[1:]] == [str(p) for p in paths]
    assert [float(r[2]) for r in rows[1:]] == scores.tolist()  # no precision lost
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]

    write_json(paths, scores.tolist(), tmp_path / "out.json")
    images = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["images"]
    assert [(i["rank"], i["path"], i["score"]) for i in images] == \
        [(n, str(p), s) for n, (p, s) in enumerate(zip(paths, scores.tolist()), 1)]
    for target in ("back.csv", "back.json"):
        write_list(paths, scores.tolist(), tmp_path / target)
        assert read_list(tmp_path / target) == [(str(p), s) for p, s in zip(paths, scores.tolist())]
    assert not list(tmp_path.glob("*.part"))  # written under a temporary name, then renamed


def test_lists_without_scores_and_with_nan(tmp_path):
    write_list(["/p/a.jpg"], None, tmp_path / "a.csv")
    assert read_list(tmp_path / "a.csv") == [("/p/a.jpg", None)]
    write_list(["/p/a.jpg", "/p/b.jpg"], [float("nan"), 0.5], tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())["images"][0]["score"] is None
    with pytest.raises(ValueError):
        write_list(["/p/a.jpg"], [0.1, 0.2], tmp_path / "bad.csv")


def test_copy_into_folder_copies_with_suffixes_and_leaves_sources(tmp_path):
    source = tmp_path / "src"
    (source / "one").mkdir(parents=True)
    (source / "two").mkdir()
    files = [source / "one" / "cat.jpg", source / "two" / "cat.jpg", source / "one" / "dog.jpg"]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * (100 + i))
        os.utime(f, ns=(1_000_000_000 * (i + 1), 1_000_000_000 * (i + 1)))
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    target = tmp_path / "out"
    target.mkdir()
    (target / "dog.jpg").write_bytes(b"already here")
    copied = copy_into_folder(files, target)
    assert [c.name for c in copied] == ["cat.jpg", "cat-2.jpg", "dog-2.jpg"]
    for f, c in zip(files, copied):
        assert c.read_bytes() == before[f][0] and c.stat().st_mtime_ns == before[f][1]  # copy2: times kept
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before  # sources untouched
    assert (target / "dog.jpg").read_bytes() == b"already here"
    assert free_name(target, "cat.jpg") == target / "cat-3.jpg"
    # Into a folder that does not exist yet.
    assert [c.name for c in copy_into_folder(files[:1], tmp_path / "new" / "deep")] == ["cat.jpg"]


def test_groups_json(tmp_path):
    write_groups_json([[tmp_path / "a.jpg", tmp_path / "b.jpg"], [tmp_path / "c.jpg"]], tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text()) == \
        {"groups": [[str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], [str(tmp_path / "c.jpg")]]}


# --- File > Export on a window -------------------------------------------------------------


def not_blank(path: Path) -> bool:
    image = QImage(str(path))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(64, 32)
    return not image.isNull() and len({small.pixel(x, y) for x in range(64) for y in range(32)}) > 10


def test_export_menu_lists_and_pictures(qtbot, ready_window, tmp_path):
    panels = ready_window
    exports, state = panels.exports, ready_window.state
    file_menu = ready_window.menuBar().actions()[0].menu()
    assert "E&xport" in [a.text() for a in file_menu.actions()]
    texts = [a.text() for a in exports.menu.actions() if a.text()]
    assert len(texts) == 9 and all(a.toolTip() for a in exports.menu.actions() if a.text())

    ready_window.session.query_by_rows(rows_by_name(state, "cat-original.jpg"))
    qtbot.wait(20)
    c = state.collection
    expected_order = np.argsort(-state.query.scores, kind="stable")

    # The ranking: every image, best first, with its score.
    assert exports.export_list("ranking", tmp_path / "ranking.csv") == 28
    back = read_list(tmp_path / "ranking.csv")
    assert [p for p, _ in back] == [str(c.folder / c.paths[r]) for r in expected_order]
    np.testing.assert_allclose([s for _, s in back], state.query.scores[expected_order], rtol=1e-6)

    # A histogram range: exactly the grid's rows, in the grid's order.
    low, high = np.sort(state.query.scores)[[5, 20]]
    ready_window.histograms.set_range(float(low), float(high))
    rows = analysis.rows_in_range(state.query.scores, *ready_window.histograms.selected_range())
    assert exports.export_list("filter", tmp_path / "range.json") == len(rows) > 0
    back = read_list(tmp_path / "range.json")
    assert [p for p, _ in back] == [str(c.folder / c.paths[r]) for r in rows]
    np.testing.assert_allclose([s for _, s in back], state.query.scores[rows], rtol=1e-6)

    # The selection, best first; then copied into a folder, sources untouched.
    selected = rows_by_name(state, "rocket-gray.jpg", "cat-gray.jpg", "coffee-gray.jpg")
    state.select(selected, "test")
    exports.export_list("selection", tmp_path / "selection.csv")
    back = read_list(tmp_path / "selection.csv")
    ordered = sorted(selected, key=lambda r: -state.query.scores[r])
    assert [p for p, _ in back] == [str(c.folder / c.paths[r]) for r in ordered]
    sources = {r: (c.folder / c.paths[r]).read_bytes() for r in selected}
    copied = exports.copy_list("selection", tmp_path / "picked")
    assert sorted(p.name for p in copied) == sorted(Path(c.paths[r]).name for r in selected)
    for r in selected:
        assert (c.folder / c.paths[r]).read_bytes() == sources[r]
        assert (tmp_path / "picked" / Path(c.paths[r]).name).read_bytes() == sources[r]

    # Pictures of the plots.
    for name in ("histogram", "map", "compare"):
        if name == "compare":
            panels.compare_dock.show()
            panels.compare_dock.raise_()
            qtbot.wait(50)
        assert exports.save_png(name, tmp_path / f"{name}.png")
        assert not_blank(tmp_path / f"{name}.png"), name

    ready_window.resize(1500, 1000)
    panels.named_queries_view.save_current("cats")
    ready_window.histogram_dock.raise_()
    qtbot.wait(300)
    assert ready_window.grab().save("/tmp/issue4-window.png")

    exports._update_enabled()
    assert all(a.isEnabled() for a in exports.list_actions.values())
    assert not exports.groups_action.isEnabled()  # no duplicates found yet
