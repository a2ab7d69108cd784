"""The window builds every dock and menu in its constructor: where the docks go by default,
the menu entries (found by menu id), and that a layout the user chose comes back in the next
window, with a dock that layout never knew in its default place."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from explorer.gui.actions.menus import MenuId

ANALYSIS_DOCKS = {"ComparequeriesDock", "RetrievalevaluationDock", "RepresentationsDock", "NearduplicatesDock"}


def test_docks_menus_and_remembered_layout(qtbot):
    from explorer.gui.main_window import MainWindow, settings

    settings().remove("window_state")  # a first run: the default arrangement
    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.wait(20)
    tabbed = {d.objectName() for d in second.tabifiedDockWidgets(second.histogram_dock)}
    assert tabbed == ANALYSIS_DOCKS
    assert second.tabifiedDockWidgets(second.named_queries_dock) == []
    assert second.dockWidgetArea(second.named_queries_dock) == Qt.DockWidgetArea.BottomDockWidgetArea

    menus = second.menus
    assert [a.menu() for a in second.menuBar().actions()] == [menus[m] for m in MenuId]
    view = [a.text() for a in menus[MenuId.VIEW].actions()]
    for title in ("Named queries", "Compare queries", "Retrieval evaluation", "Representations", "Near-duplicates"):
        assert title in view
    query = [a.text() for a in menus[MenuId.QUERY].actions()]
    assert "&Evaluate retrieval by label" in query and "Find near-&duplicates" in query
    file_entries = [a.menu() for a in menus[MenuId.FILE].actions()]
    assert second.exports.menu in file_entries
    assert [a.text() for a in menus[MenuId.FILE].actions()][-1] == "&Quit"

    # The user moves the named queries to the left; the next window puts them there again.
    second.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, second.named_queries_dock)
    second.close()
    third = MainWindow()
    qtbot.addWidget(third)
    third.show()
    qtbot.wait(20)
    assert third.dockWidgetArea(third.named_queries_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert len(third.tabifiedDockWidgets(third.histogram_dock)) == 4
    for win in (second, third):
        win.session.shutdown()


def test_a_dock_newer_than_the_saved_layout_gets_its_default_place(qtbot):
    """A layout saved by an earlier version, which had no Near-duplicates dock (here: the dock
    is renamed before saving, so the layout holds no dock of its name)."""
    from explorer.gui.main_window import MainWindow, settings

    settings().remove("window_state")
    old = MainWindow()
    qtbot.addWidget(old)
    old.show()
    old.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, old.named_queries_dock)
    old.removeDockWidget(old.duplicates_dock)
    old.duplicates_dock.setObjectName("SomeFutureDock")
    old.close()

    new = MainWindow()
    qtbot.addWidget(new)
    new.show()
    qtbot.wait(20)
    assert new.dockWidgetArea(new.named_queries_dock) == Qt.DockWidgetArea.LeftDockWidgetArea  # restored
    assert new.duplicates_dock in new.tabifiedDockWidgets(new.histogram_dock)  # its default
    assert new.duplicates_dock.isVisibleTo(new)
    for win in (old, new):
        win.session.shutdown()


def test_dock_names_are_those_saved_layouts_know():
    """A user's saved layout finds its docks by object name: renaming one loses its place."""
    from explorer.gui.main_window import MainWindow

    window = MainWindow()
    names = {dock.objectName() for dock in window.findChildren(QDockWidget)}
    assert names == {"MapDock", "QueryDock", "SimilaritydistributionDock", "NamedQueriesDock", *ANALYSIS_DOCKS}
    window.session.shutdown()
    window.deleteLater()


def test_the_first_window_gives_the_distribution_its_height(qtbot):
    from explorer.gui.main_window import MainWindow, settings

    settings().remove("window_state")
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    qtbot.waitUntil(lambda: window.histogram_dock.height() >= window.histogram_dock.sizeHint().height(), timeout=2000)
    window.session.shutdown()
