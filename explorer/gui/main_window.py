"""The main window: grid in the centre; map, query, distribution and the analysis views in
docks. Everything is built here, in one constructor: the state, the session that runs core work,
every view and dock, and the menus."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSettings, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QActionGroup, QCloseEvent, QDesktopServices, QDragEnterEvent, QDragMoveEvent, QDropEvent,
    QFileOpenEvent, QIcon, QKeySequence, QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton,
    QScrollArea, QWidget,
)

from ..core import backends
from ..core.backbones import WeightsUnavailable
from ..core.backends import BackendUnavailable
from ..core.catalog import FolderError
from ..core.store import CollectionError, data_root, folder_dir
from ..logs import log_file
from ..resources import icon_path
from .actions.export_actions import ExportActions
from .actions.menus import MenuId, add_action, build_menus
from .controllers.session import Session
from .controllers.tasks import TaskKind, Tasks
from .controllers.thumbnails import ThumbnailCache
from .state.app_state import OPENING, AppState
from .state.named_queries import NamedQueries
from .views.analysis.compare_view import CompareView
from .views.analysis.duplicates_view import DuplicatesView
from .views.analysis.evaluation_view import EvaluationView
from .views.analysis.representations_view import RepresentationsView
from .views.grid.grid_view import GridView
from .views.grid.why_similar import show_why_similar
from .views.histogram.histogram_overlay import HistogramOverlay
from .views.histogram.histogram_view import HistogramView
from .views.map.map_view import MapView
from .views.query.named_queries_view import NamedQueriesView
from .views.query.negative_examples_view import NegativeExamplesView
from .views.query.query_view import QueryView
from .views.query.query_sources import local_files

log = logging.getLogger(__name__)
MAX_RECENT = 8


def settings() -> QSettings:
    # The self-test runs as "Explorer self-test": it must not touch the user's settings.
    name = QCoreApplication.applicationName()
    return QSettings("Explorer", name if name.startswith("Explorer") else "Explorer")


def _recent_folders() -> list[str]:
    """The remembered folders, newest first (QSettings returns one as a plain string)."""
    recent = settings().value("recent", []) or []
    return [recent] if isinstance(recent, str) else [str(f) for f in recent]  # type: ignore[attr-defined]


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d} left" if seconds >= 60 else f"{seconds} s left"


def application_icon() -> QIcon:
    """Every rendered size of the icon, so each place (title bar, task bar, dock) gets a sharp one."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        try:
            icon.addFile(str(icon_path(size)), QSize(size, size))
        except FileNotFoundError:  # an incomplete installation still starts, with Qt's default
            pass
    return icon


def _backend_tip(name: str, installed: bool) -> str:
    if name == backends.AUTO:
        return "The fastest backend installed: a GPU when there is one, else ONNX Runtime or OpenVINO"
    if not installed:
        return f"Not installed: {backends.install_hint(name)}"
    return f"{backends.LABELS[name]} {backends.version(name)}: the same vectors as every other backend"


class FolderOpenRequests(QObject):
    """macOS delivers "Open With Explorer" on a folder, and folders dropped on the Dock icon, as
    FileOpen events to the running app rather than as arguments: open them in the window."""

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if isinstance(event, QFileOpenEvent) and Path(event.file()).is_dir():
            self.window.open_folder(event.file())
            return True
        return False


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("Explorer")
        self.setWindowIcon(application_icon())
        self.state = AppState()
        self.tasks = Tasks(self)
        self.session = Session(self.state, self.tasks, self)
        self.thumbnails = ThumbnailCache(self.tasks, self.state, self)
        self.named_queries = NamedQueries(self.state)
        self.named_queries.problem.connect(lambda message: self.show_error("Named queries", message))

        self._build_views()
        self._build_status_bar()
        self._build_docks()
        self._build_menus()

        self.state.collection_changed.connect(self._collection_changed)
        self.state.indexing_changed.connect(self._indexing_changed)
        self.state.backend_changed.connect(self._backend_changed)
        self.tasks.failed.connect(self._task_failed)
        self.session.query_failed.connect(lambda message: self.show_error("Query", message))
        self.session.repairing.connect(self._repairing)
        self.session.indexing_finished.connect(self._indexing_finished)
        self.setAcceptDrops(True)  # files dropped anywhere on the window (see dropEvent)
        self._restore_settings()
        self.named_queries.load()  # after the wiring: a damaged file's problem reaches the user

    # --- construction ---------------------------------------------------------------------

    def _build_views(self) -> None:
        state, session, thumbnails = self.state, self.session, self.thumbnails
        self.grid = GridView(state, session, thumbnails)
        self.map = MapView(state, session, thumbnails)
        self.query_view = QueryView(state, session, thumbnails)
        self.negatives = NegativeExamplesView(state, session, thumbnails)
        self.negatives.problem.connect(lambda message: self.show_error("Negative examples", message))
        self.query_view.add_section(self.negatives)
        self.query_view.add_result_action("Why similar?", lambda rows: show_why_similar(self.session, rows[0], self))
        self.query_view.add_result_action("Add as negative example", self.negatives.add_rows)
        self.histograms = HistogramView(state, session)
        self.overlay = HistogramOverlay(self.histograms, self.named_queries)
        self.named_queries_view = NamedQueriesView(self.named_queries)
        self.named_queries_view.problem.connect(lambda message: self.show_error("Named queries", message))
        self.compare = CompareView(self.named_queries, thumbnails)
        self.evaluation = EvaluationView(state, session)
        self.representations = RepresentationsView(self.named_queries, session, thumbnails)
        self.representations.open_requested.connect(self._open_representation)
        self.duplicates = DuplicatesView(state, session, thumbnails)

    def _open_representation(self, model: str) -> None:
        if self.state.folder is not None:
            self.session.open_folder(self.state.folder, model)

    def _build_docks(self) -> None:
        """Every dock in its default place; the layout the user left (restoreState, later)
        moves the docks it knows, and a dock newer than that layout keeps its default."""
        area = Qt.DockWidgetArea
        self.resize(1400, 900)  # the default arrangement is made for the default size
        self.setCentralWidget(self.grid)
        self.map_dock = self._dock("Map", self.map)
        self.addDockWidget(area.RightDockWidgetArea, self.map_dock)
        self.query_dock = self._dock("Query", self.query_view)
        self.addDockWidget(area.LeftDockWidgetArea, self.query_dock)
        self.histogram_dock = self._dock("Similarity distribution", self.histograms)
        self.addDockWidget(area.BottomDockWidgetArea, self.histogram_dock)
        # The named queries beside the distribution plot, whose overlay their checkboxes drive
        # (the query dock on the left has no height to spare); the analysis views as its tabs.
        self.named_queries_dock = self._dock("Named queries", self.named_queries_view, name="NamedQueriesDock")
        self.splitDockWidget(self.histogram_dock, self.named_queries_dock, Qt.Orientation.Horizontal)
        self.resizeDocks([self.named_queries_dock], [self.named_queries_view.sizeHint().width()],
                         Qt.Orientation.Horizontal)
        self.compare_dock, self.evaluation_dock, self.representations_dock, self.duplicates_dock = (
            self._dock(title, widget, scrolled=True) for title, widget in (
                ("Compare queries", self.compare), ("Retrieval evaluation", self.evaluation),
                ("Representations", self.representations), ("Near-duplicates", self.duplicates)))
        for dock in self.analysis_docks():
            self.tabifyDockWidget(self.histogram_dock, dock)
        self.representations_dock.visibilityChanged.connect(self.representations.revisit)  # its tab chosen
        self.histogram_dock.raise_()  # the distribution stays the tab in front

    def analysis_docks(self) -> list[QDockWidget]:
        return [self.compare_dock, self.evaluation_dock, self.representations_dock, self.duplicates_dock]

    def _dock(self, title: str, widget: QWidget, scrolled: bool = False, name: str = "") -> QDockWidget:
        dock = QDockWidget(title, self)
        # saveState keys the layout by these names: they never change, or a user's layout is lost
        dock.setObjectName(name or title.replace(" ", "").replace("-", "") + "Dock")
        if scrolled:
            # Scrolls rather than imposing its minimum size on the window: a tab group is as
            # large as its largest page, and the window must still fit a 1366 x 768 screen.
            scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
            scroll.setWidget(widget)
            widget = scroll
        dock.setWidget(widget)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel("Open a folder to begin (Ctrl+O)")
        self.progress = QProgressBar(maximumWidth=260, textVisible=True)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", visible=False)
        self.cancel_button.setToolTip("Stop indexing; what is done so far is kept")
        self.cancel_button.clicked.connect(self.session.cancel_indexing)
        self.backend_label = QLabel()
        self.backend_label.setObjectName("backendLabel")
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.backend_label)

    def _build_menus(self) -> None:
        self.menus = menus = build_menus(self.menuBar())
        file_menu = menus[MenuId.FILE]
        add_action(file_menu, "&Open folder...", self.choose_folder, QKeySequence.StandardKey.Open,
                   "Index and explore a folder of photos", self)
        self.recent_menu = file_menu.addMenu("Open &recent")
        add_action(file_menu, "Open &sample collection", self.open_sample, None,
                   "The photographs that ship with Explorer", self)
        file_menu.addSeparator()
        add_action(file_menu, "&Re-index folder", self.session.reindex, "F5",
                   "Look for new, changed and deleted files", self)
        add_action(file_menu, "Re&build collection...", self.confirm_rebuild, None,
                   "Embed every photo again, from scratch (named queries are kept)", self)
        add_action(file_menu, "Show collection &files", self.show_collection_files, None,
                   "Open the folder where this collection's index, vectors and thumbnails are kept", self)
        file_menu.addSeparator()
        self.exports = ExportActions(self.state, self.duplicates, {
            "histogram": lambda: self.histograms.plot, "map": lambda: self.map,
            "compare": lambda: self.compare.plot}, self)
        self.exports.problem.connect(self.show_error)
        self.exports.done.connect(lambda message: self.statusBar().showMessage(message, 8000))
        file_menu.addMenu(self.exports.menu)
        file_menu.addSeparator()
        add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit, parent=self)

        query_menu = menus[MenuId.QUERY]
        add_action(query_menu, "&Paste image as query", self.query_view.paste, QKeySequence.StandardKey.Paste,
                   "Use the image on the clipboard as a query example", self)
        add_action(query_menu, "&Clear query", self.state.query.clear, "Ctrl+Shift+X", parent=self)
        query_menu.addSeparator()
        add_action(query_menu, "&Evaluate retrieval by label", lambda: self._run_in(
            self.evaluation_dock, self.evaluation.evaluate), None,
            "Every labelled image as a query: mAP, precision@10 and recall@1, as `explorer eval`", self)
        add_action(query_menu, "Find near-&duplicates", lambda: self._run_in(
            self.duplicates_dock, self.duplicates.compute), None,
            "Each image's nearest-neighbour similarity, and groups above a threshold", self)

        view_menu = menus[MenuId.VIEW]
        for dock in (self.map_dock, self.query_dock, self.histogram_dock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        add_action(view_menu, "Recompute &map layout", self.session.recompute_layout, None,
                   "Fit UMAP again on all images", self)
        add_action(view_menu, "Show &all images", lambda: self.state.set_filter(None, "", "menu"),
                   "Escape", "Clear the grid's filter", self)
        view_menu.addSeparator()
        for dock in [self.named_queries_dock, *self.analysis_docks()]:
            view_menu.addAction(dock.toggleViewAction())

        self.backend_menu = menus[MenuId.SETTINGS].addMenu("Inference &backend")
        self.backend_menu.setToolTipsVisible(True)
        self.backend_actions = QActionGroup(self)
        for name in (backends.AUTO, *backends.BACKENDS):
            action = self.backend_menu.addAction(backends.LABELS[name])
            action.setCheckable(True)
            action.setData(name)
            installed = name == backends.AUTO or backends.is_installed(name)
            action.setEnabled(installed)
            action.setToolTip(_backend_tip(name, installed))
            self.backend_actions.addAction(action)
        self.backend_actions.triggered.connect(lambda action: self.set_backend(action.data()))

        help_menu = menus[MenuId.HELP]
        add_action(help_menu, "Show &log", self.show_log, None,
                   f"Open the log file (what happened in this and earlier sessions): {log_file()}", self)
        add_action(help_menu, "&About Explorer", self._about, parent=self)
        self._refresh_recent_menu()

    @staticmethod
    def _run_in(dock: QDockWidget, run) -> None:
        dock.show()
        dock.raise_()
        run()

    # --- folders --------------------------------------------------------------------------

    def choose_folder(self) -> None:
        start = str(self.state.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", start)
        if folder:
            self.open_folder(folder)

    def open_sample(self) -> None:
        from ..resources import sample_folder

        self.open_folder(sample_folder())

    def open_folder(self, folder: str | Path) -> None:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            self.show_error("Open folder", f"Not a folder: {folder}")
            return
        self.session.open_folder(folder)
        self.setWindowTitle(f"Explorer \u2014 {folder.resolve().name}")
        self._remember_folder(folder.resolve())

    def _remember_folder(self, folder: Path) -> None:
        s = settings()
        recent = [str(folder)] + [f for f in _recent_folders() if f != str(folder)]
        s.setValue("recent", recent[:MAX_RECENT])
        s.setValue("last_folder", str(folder))
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = _recent_folders()
        for folder in recent:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda *_, f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(recent))

    # --- files dropped anywhere on the window ---------------------------------------------

    @staticmethod
    def _dropped_paths(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[Path]:
        # Drags that start in our own views land only where they mean something (the query
        # panel takes them itself): a thumbnail let go over the grid must not become a query.
        return local_files(event.mimeData()) if event.source() is None else []

    def dragEnterEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt's name)
        if self._dropped_paths(event):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        """A folder from the file manager opens; image files become query examples, as on the
        query panel (which takes drops on itself first)."""
        paths = self._dropped_paths(event)
        if not paths:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)  # never let the file manager move a file
        event.accept()
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        else:
            self.query_dock.show()
            self.query_view.add_paths(paths)

    # --- state observers ------------------------------------------------------------------

    def _collection_changed(self) -> None:
        c = self.state.collection
        if c is not None and not self.state.indexing.running:
            self.status_label.setText(f"{len(c)} images \u00b7 {self.state.model}")

    def _indexing_changed(self) -> None:
        status = self.state.indexing
        self.progress.setVisible(status.running)
        self.cancel_button.setVisible(status.running and status.message != OPENING)  # nothing to cancel yet
        if status.running:
            self.progress.setRange(0, max(status.total, 0))
            self.progress.setValue(status.done)
            self.progress.setFormat("%v / %m" if status.total else status.message)
            rate = f" \u00b7 {status.rate:.1f} images/s" if status.rate else ""
            eta = _format_seconds(status.eta_seconds)
            self.status_label.setText(f"Indexing: {status.message}{rate}" + (f" \u00b7 {eta}" if eta else ""))
        else:
            self._collection_changed()

    def _indexing_finished(self, report) -> None:
        skipped = f", {report.skipped} skipped" if report.skipped else ""
        state = "Cancelled" if report.cancelled else "Indexed"
        self.statusBar().showMessage(
            f"{state}: {report.new} new, {report.modified} changed, {report.removed} removed{skipped}", 10000)

    def _task_failed(self, kind: TaskKind, error: BaseException) -> None:
        if not kind.title:
            return
        known = (FolderError, WeightsUnavailable, CollectionError, BackendUnavailable, OSError)
        self.show_error(kind.title, str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}")

    def show_log(self) -> bool:
        """Open the log file in the desktop's viewer for text; False (with a message) if none."""
        path = log_file()
        if not path.exists():
            self.show_error("No log yet", f"Nothing has been logged to {path} yet.")
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.show_error("Could not open the log", f"The log is {path}.")
            return False
        return True

    def _repairing(self, text: str) -> None:
        self.statusBar().showMessage("Repairing the collection: damaged files found (see Help > Show log)", 15000)
        box = QMessageBox(QMessageBox.Icon.Information, "Repairing the collection",
                          "Some files of this collection were damaged. Explorer is making them again "
                          "from your photos (your photos are never changed):", QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(text)
        box.setObjectName("repairNotice")
        box.setWindowModality(Qt.WindowModality.NonModal)  # the grid fills as the repair embeds again
        box.show()

    def confirm_rebuild(self) -> None:
        if self.state.folder is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Rebuild collection",
                          f"Embed every photo of {self.state.folder} again, from scratch?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("For a collection that behaves oddly: its index, vectors, map and "
                               "thumbnails are made again. Your photos and named queries are kept.")
        box.addButton("Rebuild", QMessageBox.ButtonRole.AcceptRole).clicked.connect(self.session.rebuild)
        box.setObjectName("rebuildQuestion")
        box.open()

    def show_collection_files(self) -> bool:
        folder = self.state.folder
        where = folder_dir(folder) if folder is not None else data_root()
        if not where.is_dir() or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(where))):
            self.show_error("Could not show the files", f"This collection's files are kept in {where}.")
            return False
        return True

    def show_error(self, title: str, text: str) -> None:
        log.warning("shown to the user: %s: %s", title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.open()  # non-modal: the app keeps working (and tests are not blocked)

    def _about(self) -> None:
        rows = "".join(
            f"<tr><td>{backends.LABELS[name]}</td><td>{backends.version(name) or 'not installed'}</td></tr>"
            for name in backends.BACKENDS)
        in_use = self.state.backend_in_use or "none yet (nothing embedded in this session)"
        QMessageBox.about(self, "About Explorer",
                          "<b>Explorer</b><p>Do deep features retrieve X? Index a folder of photos "
                          "with a CNN and explore what its features find.</p>"
                          f"<p>Inference backend: {backends.LABELS[self.state.backend]} setting; "
                          f"in use: {in_use}.</p><table>{rows}</table>")

    # --- inference backend ----------------------------------------------------------------

    def set_backend(self, name: str) -> None:
        """Which backend runs the forward pass from now on (remembered). Every backend makes
        the same vectors, so nothing is re-indexed."""
        if name not in backends.BACKENDS or not backends.is_installed(name):
            name = backends.AUTO  # a remembered choice whose package has since gone
        settings().setValue("backend", name)
        self.state.set_backend(name)
        self._backend_changed()

    def _backend_changed(self) -> None:
        chosen = self.state.backend
        for action in self.backend_actions.actions():
            action.setChecked(action.data() == chosen)
        in_use = self.state.backend_in_use
        self.backend_label.setText(in_use or backends.LABELS[chosen])
        self.backend_label.setToolTip(
            f"Inference backend: {backends.LABELS[chosen]}"
            + (f", running on {in_use}" if in_use else " (starts with the first image to embed)")
            + ". Change it in Settings > Inference backend.")

    # --- settings -------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = settings()
        geometry, layout = s.value("geometry"), s.value("window_state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._default_arrangement = layout is None or not self.restoreState(layout)
        self.grid.set_thumbnail_size(int(str(s.value("thumbnail_size", self.grid.thumbnail_size()))))
        self.set_backend(str(s.value("backend", backends.AUTO)))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._default_arrangement:
            # The distribution as tall as it asks, once laid out: the query dock beside it
            # would otherwise take every spare pixel of the first window.
            self._default_arrangement = False
            tabs = self.named_queries_dock.height() - self.histogram_dock.height()  # its tab bar
            self.resizeDocks([self.histogram_dock], [self.histogram_dock.sizeHint().height() + max(tabs, 0)],
                             Qt.Orientation.Vertical)

    def closeEvent(self, event: QCloseEvent) -> None:
        s = settings()
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("thumbnail_size", self.grid.thumbnail_size())
        self.session.shutdown()
        super().closeEvent(event)

    def start(self, folder: str | Path | None = None) -> None:
        """Open the given folder, else the last one used, else the bundled sample."""
        if folder is None:
            last = settings().value("last_folder")
            folder = last if last and Path(last).is_dir() else None
        if folder is None:
            from ..resources import sample_folder

            folder = sample_folder()
        QTimer.singleShot(0, lambda: self.open_folder(folder))
