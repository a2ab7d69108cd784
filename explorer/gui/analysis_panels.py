"""The analysis half of the main window, added to it in one call: `install_analysis(window)`.

Named queries and negative examples, the overlay and summary on the histogram, query
comparison, retrieval evaluation, representations, near-duplicates and exports. Everything
here observes the window's AppState and runs its long work through the window's Tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMenu, QScrollArea, QWidget

from .state.named_queries import AnalysisState
from .views.analysis.compare_view import CompareView
from .views.analysis.duplicates_view import DuplicatesView
from .views.analysis.evaluation_view import EvaluationView
from .actions.export_actions import ExportActions
from .views.histogram.histogram_overlay import HistogramOverlay
from .views.query.named_queries_panel import NamedQueriesPanel
from .views.query.negative_examples import NegativeExamplesStrip
from .views.analysis.representations_view import RepresentationsView

if TYPE_CHECKING:
    from .main_window import MainWindow


@dataclass(eq=False)
class AnalysisPanels:
    """What install_analysis added, for tests and for later wiring."""

    state: AnalysisState
    named_queries: NamedQueriesPanel
    named_queries_dock: QDockWidget
    negatives: NegativeExamplesStrip
    overlay: HistogramOverlay
    compare: CompareView
    compare_dock: QDockWidget
    evaluation: EvaluationView
    evaluation_dock: QDockWidget
    representations: RepresentationsView
    representations_dock: QDockWidget
    duplicates: DuplicatesView
    duplicates_dock: QDockWidget
    exports: ExportActions


def _dock(window: MainWindow, title: str, widget: QWidget) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title.replace(" ", "").replace("-", "") + "Dock")  # saveState needs stable names
    # Scrolls rather than imposing its minimum size on the window: a tab group is as large as
    # its largest page, and the window must still fit a 1366 x 768 screen.
    scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
    scroll.setWidget(widget)
    dock.setWidget(scroll)
    return dock


def _place_docks(window: MainWindow, named_dock: QDockWidget, tabbed: list[QDockWidget]) -> None:
    """Put each dock back where the user left it; the window restored its saved layout before
    these docks existed. A dock that layout does not know gets the default place: the named
    queries beside the distribution plot, whose overlay its checkboxes drive (the query dock on
    the left has no height to spare), the others as tabs of the distribution's dock."""
    restored = {dock: window.restoreDockWidget(dock) for dock in [named_dock, *tabbed]}
    if not restored[named_dock]:
        window.splitDockWidget(window.histogram_dock, named_dock, Qt.Orientation.Horizontal)
        window.resizeDocks([named_dock], [named_dock.widget().sizeHint().width()], Qt.Orientation.Horizontal)
    for dock in tabbed:
        if not restored[dock]:
            window.tabifyDockWidget(window.histogram_dock, dock)
    if not all(restored.values()):
        window.histogram_dock.raise_()  # the distribution stays the tab in front


def _menu(window: MainWindow, title: str) -> QMenu:
    """The window's top-level menu with this title (e.g. "&View"), created if missing."""
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text() == title:
            return action.menu()
    return window.menuBar().addMenu(title)


def install_analysis(window: MainWindow) -> AnalysisPanels:
    """Add the analysis docks, menu entries and wiring to a MainWindow; returns what was added
    (also kept as `window.analysis_panels`). Installing twice returns the first installation."""
    if getattr(window, "analysis_panels", None) is not None:
        return window.analysis_panels
    state, tasks, thumbnails = window.state, window.tasks, window.thumbnails
    analysis = AnalysisState(state)
    analysis.problem.connect(lambda message: window.show_error("Named queries", message))
    analysis.load()

    named = NamedQueriesPanel(analysis)
    named.problem.connect(lambda message: window.show_error("Named queries", message))
    named_dock = QDockWidget("Named queries", window)
    named_dock.setObjectName("NamedQueriesDock")
    named_dock.setWidget(named)

    negatives = NegativeExamplesStrip(state, tasks, thumbnails)
    negatives.problem.connect(lambda message: window.show_error("Negative examples", message))
    window.query_panel.add_section(negatives)
    window.query_panel.add_result_action("Add as negative example", negatives.add_rows)

    overlay = HistogramOverlay(window.histograms, analysis)

    compare = CompareView(analysis, thumbnails)
    evaluation = EvaluationView(state, tasks)
    representations = RepresentationsView(analysis, tasks, thumbnails)
    representations.open_requested.connect(
        lambda model: state.folder is not None and window.session.open_folder(state.folder, model))
    duplicates = DuplicatesView(state, tasks, thumbnails)
    docks = [_dock(window, title, widget) for title, widget in (
        ("Compare queries", compare), ("Retrieval evaluation", evaluation),
        ("Representations", representations), ("Near-duplicates", duplicates))]
    _place_docks(window, named_dock, docks)

    view_menu = _menu(window, "&View")
    view_menu.addSeparator()
    for dock in [named_dock, *docks]:
        view_menu.addAction(dock.toggleViewAction())
    analysis_menu = _menu(window, "&Query")
    analysis_menu.addSeparator()
    evaluate = analysis_menu.addAction("&Evaluate retrieval by label", lambda: (
        docks[1].show(), docks[1].raise_(), evaluation.evaluate()))
    evaluate.setToolTip("Every labelled image as a query: mAP, precision@10 and recall@1, as `explorer eval`")
    find = analysis_menu.addAction("Find near-&duplicates", lambda: (
        docks[3].show(), docks[3].raise_(), duplicates.compute()))
    find.setToolTip("Each image's nearest-neighbour similarity, and groups above a threshold")

    exports = ExportActions(window, analysis, duplicates)
    panels = AnalysisPanels(analysis, named, named_dock, negatives, overlay, compare, docks[0],
                            evaluation, docks[1], representations, docks[2], duplicates, docks[3], exports)
    window.analysis_panels = panels
    return panels
