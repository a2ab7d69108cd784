"""The main window end to end: open, index in the background, cancel, errors, settings."""

import numpy as np
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox

from helpers import copy_sample
from explorer.gui.controllers.tasks import TaskKind
from gui_helpers import UrlCatcher, wait_until_ready


def error_dialogs(win):
    return [w for w in win.findChildren(QMessageBox) if w.objectName() == "errorDialog" and w.isVisible()]


def test_open_unindexed_folder_indexes_in_background_and_fills_in(qtbot, window, tmp_path):
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee", "rocket", "astronaut", "clock", "brick"])
    grew = []
    window.state.collection_grew.connect(lambda rows: grew.append(len(rows)))
    progress_seen = []
    window.state.indexing_changed.connect(lambda: progress_seen.append(window.progress.isVisible()))
    window.open_folder(folder)
    assert window.windowTitle() == "Explorer \u2014 photos"
    wait_until_ready(qtbot, window)
    assert len(window.state.collection) == 42
    assert True in progress_seen and not window.progress.isVisible()  # shown while indexing only
    assert "42 images" in window.status_label.text()
    # The layout covers every image and the collection matches what core reads from disk.
    from explorer.core.search import SearchIndex

    on_disk = SearchIndex.open(folder)
    np.testing.assert_array_equal(on_disk.ids, window.state.collection.ids)
    np.testing.assert_array_equal(np.sort(window.state.layout.ids), on_disk.ids)
    on_disk.close()


def test_cancel_half_way_keeps_what_was_indexed_and_resumes(qtbot, window, tmp_path):
    folder = copy_sample(tmp_path / "all")  # 91 images: three batches
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.collection is not None and len(window.state.collection) > 0,
                    timeout=120_000)
    window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.state.indexing.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.tasks.latest(TaskKind.OPEN) is None, timeout=60_000)
    done = len(window.state.collection)
    assert 0 < done < 91
    window.session.reindex()
    wait_until_ready(qtbot, window, layout=False)
    assert len(window.state.collection) == 91


def test_unusable_folder_shows_an_error_and_the_app_keeps_working(qtbot, window, tmp_path):
    window.open_folder(tmp_path / "does-not-exist")
    assert error_dialogs(window)
    assert window.state.folder is None


def test_settings_persist_between_windows(qtbot, tmp_path, ready_window):
    from explorer.gui.main_window import MainWindow

    ready_window.grid.set_thumbnail_size(200)
    ready_window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    try:
        assert second.grid.thumbnail_size() == 200
        recent = [a.text() for a in second.recent_menu.actions()]
        assert str(ready_window.state.folder) in recent
    finally:
        second.session.shutdown()


def test_a_folder_opened_by_the_system_opens_in_the_window(qtbot, window, indexed_folder):
    """macOS "Open With" and Dock drops arrive as FileOpen events, not as arguments."""
    from PySide6.QtGui import QFileOpenEvent

    from explorer.gui.main_window import FolderOpenRequests

    requests = FolderOpenRequests(window)
    assert not requests.eventFilter(window, QFileOpenEvent(str(indexed_folder / "cat" / "cat-original.jpg")))
    assert requests.eventFilter(window, QFileOpenEvent(str(indexed_folder)))
    wait_until_ready(qtbot, window, layout=False)
    assert window.state.folder == indexed_folder.resolve() and len(window.state.collection) == 28


def test_backend_choice_is_remembered_and_the_status_bar_names_what_ran(qtbot, window, tmp_path):
    from explorer.core import backends
    from explorer.gui.main_window import MainWindow

    actions = {a.data(): a for a in window.backend_actions.actions()}
    assert [a.text() for a in actions.values()] == ["Automatic", "ONNX Runtime", "OpenVINO", "PyTorch"]
    assert all(a.isEnabled() == (name == "auto" or backends.is_installed(name)) for name, a in actions.items())
    assert actions["auto"].isChecked() and window.backend_label.text() == "Automatic"
    try:
        actions["torch"].trigger()
        assert window.state.backend == "torch" and actions["torch"].isChecked()
        window.open_folder(copy_sample(tmp_path / "photos", ["cat", "coffee"]))
        wait_until_ready(qtbot, window, layout=False)
        assert window.backend_label.text() == "PyTorch (CPU)"
        assert "PyTorch" in window.backend_label.toolTip()

        second = MainWindow()
        qtbot.addWidget(second)
        try:
            assert second.state.backend == "torch" and second.backend_label.text() == "PyTorch"
        finally:
            second.session.shutdown()
    finally:
        actions["auto"].trigger()  # the settings outlive this test
    assert window.state.backend == "auto" and window.backend_label.text() == "Automatic"



def test_the_log_file_records_the_milestones_and_help_opens_it(qtbot, window, tmp_path, monkeypatch,
                                                               restored_logging):
    from explorer import logs

    monkeypatch.setenv("EXPLORER_LOG_DIR", str(tmp_path / "logs"))
    path = logs.log_to_file("info")
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee"])
    (folder / "broken.jpg").write_text("not a photo")
    window.open_folder(folder)
    wait_until_ready(qtbot, window)
    text = path.read_text()
    for line in ("indexing started: ", "indexing finished: indexed ", "14 new", "forward pass: ",
                 "skipped broken.jpg: not an image file", "collection opened: ", "14 images",
                 "map shown: 14 points (quick), ", "map shown: 14 points (umap), "):
        assert line in text, line
    assert text.index("(quick)") < text.index("(umap)")
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        assert window.show_log()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [url.toLocalFile() for url in catcher.urls] == [str(path)]
    assert any(a.text() == "Show &log" for a in window.menuBar().actions()[-1].menu().actions())
