"""The app on a damaged collection (issue 18): repaired in the background with a message that says
what, never a dialog of a traceback; a full disk is a dialog and what was committed stays usable;
File > Rebuild collection and Show collection files."""

import shutil
import subprocess

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from explorer.core.query_book import Example, NamedQuery, QueryBook
from explorer.core.search import SearchIndex
from explorer.core.store import folder_dir, saved_dir
from explorer.gui.controllers import models as embedding

from damage import MODEL, TABLE
from gui_helpers import UrlCatcher, wait_until_ready
from helpers import copy_sample


def dialogs(win, name):
    return [w for w in win.findChildren(QMessageBox) if w.objectName() == name and w.isVisible()]


def top10(index: SearchIndex, query: np.ndarray) -> list[tuple[str, float]]:
    return [(hit.path.name, round(hit.score, 4)) for hit in index.search(query, 10, exact=True)]


@pytest.fixture
def before(indexed_folder, lite0):
    """The query, the top 10 of the intact collection, and a named query saved with it."""
    embedding.remember_model(lite0)  # the repair embeds with it: no second model load
    index = SearchIndex.open(indexed_folder)
    query = index.vectors[index.paths.index("cat/cat-flip.jpg")].copy()
    results = top10(index, query)
    index.close()
    QueryBook([NamedQuery("cats", [Example.of("cat", None, query)])]).save(saved_dir(indexed_folder, MODEL))
    return query, results


@pytest.mark.parametrize("row", TABLE)
def test_a_damaged_collection_is_repaired_in_the_background_with_a_message(qtbot, window, indexed_folder,
                                                                           before, row):
    query, results = before
    damage, damaged_name, refused = TABLE[row]
    queries = (saved_dir(indexed_folder, MODEL) / "queries.json").read_bytes()
    damage(indexed_folder)
    window.open_folder(indexed_folder)
    if refused or row.startswith("thumbs"):
        qtbot.waitUntil(lambda: bool(dialogs(window, "repairNotice")), timeout=60_000)
        [notice] = dialogs(window, "repairNotice")
        assert damaged_name in notice.informativeText() and "was damaged" in notice.informativeText()
        assert notice.windowModality() == Qt.WindowModality.NonModal  # the window stays usable meanwhile
    wait_until_ready(qtbot, window, layout=False)
    assert not dialogs(window, "errorDialog")
    assert len(window.state.collection) == 28
    assert top10(window.state.collection, query) == results
    assert (saved_dir(indexed_folder, MODEL) / "queries.json").read_bytes() == queries
    assert window.named_queries.names() == ["cats"]


def test_rebuild_makes_the_collection_again_and_keeps_named_queries(qtbot, window, indexed_folder, before):
    query, results = before
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    reports = []
    window.session.indexing_finished.connect(reports.append)
    actions = {a.text(): a for a in window.menuBar().actions()[0].menu().actions()}
    actions["Re&build collection..."].trigger()
    [question] = dialogs(window, "rebuildQuestion")
    next(b for b in question.buttons() if b.text() == "Rebuild").click()
    qtbot.waitUntil(lambda: window.state.collection is None or window.state.indexing.running, timeout=10_000)
    wait_until_ready(qtbot, window, layout=False)
    assert not dialogs(window, "errorDialog")
    assert len(window.state.collection) == 28 and [r.new for r in reports] == [28]  # all embedded again
    assert top10(window.state.collection, query) == results
    assert window.named_queries.names() == ["cats"]

    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        actions["Show collection &files"].trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [url.toLocalFile() for url in catcher.urls] == [str(folder_dir(indexed_folder))]


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A data directory on a 900 KB tmpfs, room for one batch of 32 (where the test can mount one)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root): the CLI test under RLIMIT_FSIZE covers a full disk")
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(mount))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_dialog_and_what_was_saved_stays_usable(qtbot, window, tmp_path, small_disk, lite0):
    embedding.remember_model(lite0)
    folder = copy_sample(tmp_path / "photos")  # 91 images: three batches
    window.open_folder(folder)
    qtbot.waitUntil(lambda: bool(dialogs(window, "errorDialog")), timeout=120_000)
    [error] = dialogs(window, "errorDialog")
    assert error.windowTitle() == "Indexing failed"
    assert error.text().startswith(f"no space left on device while saving the collection of {folder}")
    assert "free space and run again: the " in error.text() and "Traceback" not in error.text()
    kept = int(error.text().split("the ")[-1].split(" images")[0])
    qtbot.waitUntil(lambda: not window.state.indexing.running, timeout=30_000)
    assert 0 < kept < 91 and len(window.state.collection) == kept  # what was committed, shown
    assert len(window.state.collection.search(query := window.state.collection.vectors[0], 5)) == 5

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)  # space freed
    error.close()
    window.session.reindex()
    wait_until_ready(qtbot, window, layout=False)
    assert len(window.state.collection) == 91 and not dialogs(window, "errorDialog")
    assert window.state.collection.search(query, 1)[0].score > 0.999
