"""install_analysis on a bare window: where the docks go, the menu entries, and that a layout the
user chose comes back in the next window."""

from PySide6.QtCore import Qt

from explorer.gui.analysis_panels import install_analysis


def test_docks_menus_and_remembered_layout(qtbot):
    from explorer.gui.main_window import MainWindow, settings

    settings().remove("window_state")  # a first run: the default arrangement
    second = MainWindow()
    qtbot.addWidget(second)
    panels = second.analysis_panels  # MainWindow installs the panels itself
    assert install_analysis(second) is panels
    second.show()
    qtbot.wait(20)
    tabbed = {d.objectName() for d in second.tabifiedDockWidgets(second.histogram_dock)}
    assert tabbed == {"ComparequeriesDock", "RetrievalevaluationDock", "RepresentationsDock", "NearduplicatesDock"}
    assert second.tabifiedDockWidgets(panels.named_queries_dock) == []
    assert second.dockWidgetArea(panels.named_queries_dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    assert second.analysis_panels is panels

    menus = {a.text(): a.menu() for a in second.menuBar().actions() if a.menu()}
    view = [a.text() for a in menus["&View"].actions()]
    for title in ("Named queries", "Compare queries", "Retrieval evaluation", "Representations", "Near-duplicates"):
        assert title in view
    query = [a.text() for a in menus["&Query"].actions()]
    assert "&Evaluate retrieval by label" in query and "Find near-&duplicates" in query
    assert "E&xport" in [a.text() for a in menus["&File"].actions()]

    # The user moves the named queries to the left; the next window puts them there again.
    second.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, panels.named_queries_dock)
    second.close()
    third = MainWindow()
    qtbot.addWidget(third)
    again = third.analysis_panels
    third.show()
    qtbot.wait(20)
    assert third.dockWidgetArea(again.named_queries_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert len(third.tabifiedDockWidgets(third.histogram_dock)) == 4
    for win in (second, third):
        win.session.shutdown()
