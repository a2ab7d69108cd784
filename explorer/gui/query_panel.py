"""The query panel: the example images that make the current query, and its top-K results.

Examples arrive by drop (files from the file manager, thumbnails dragged from the grid), by paste,
and from "Query by this image" in the other views. Indexed images are used by their stored
vectors at once; any other image is embedded by the session in the background.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, QPoint, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QColor, QDrag, QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QIcon, QImage, QPainter,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QGridLayout, QHBoxLayout, QLabel, QListView, QListWidget,
    QListWidgetItem, QMenu, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QToolButton,
    QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ..core.images import image_extensions
from ..core.query import SearchIndex
from .session import Session
from .state import AppState, QueryExample
from .thumbnails import ThumbnailCache

SOURCE = "query"
EMPTY_HINT = "Drop photos here, paste an image (Ctrl+V), or right-click an image > Query by this image"
NO_RESULTS = "The images most similar to the query appear here, best first."
ROW_ROLE = Qt.ItemDataRole.UserRole
EXAMPLE_SIDE = 72
RESULT_SIDE = 96
MAX_PASTED_SIDE = 1024  # the model sees 224 px: no need to carry a 4K screenshot to the worker


def png_bytes(image: QImage) -> bytes:
    """Encode a QImage (e.g. from the clipboard) as PNG, shrunk to at most MAX_PASTED_SIDE."""
    if max(image.width(), image.height()) > MAX_PASTED_SIDE:
        image = image.scaled(MAX_PASTED_SIDE, MAX_PASTED_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def paths_in_text(text: str) -> list[Path]:
    """Existing files named in pasted text, one path or file:// URL per line."""
    paths = []
    for line in text.splitlines():
        line = line.strip().strip('"')
        if not line:
            continue
        path = Path(QUrl(line).toLocalFile()) if line.startswith("file:") else Path(line).expanduser()
        if path.is_absolute() and path.exists():
            paths.append(path)
    return paths


def classify_paths(paths: Sequence[Path], collection: SearchIndex | None) -> tuple[list[int], list[Path], list[str]]:
    """Split dropped paths into rows of the collection, other image files, and readable problems."""
    rows: list[int] = []
    files: list[Path] = []
    problems: list[str] = []
    row_of: dict[str, int] | None = None
    extensions = image_extensions()
    for path in paths:
        if path.is_dir():
            problems.append(f"{path.name}: is a folder; drop image files (or open the folder with Ctrl+O)")
            continue
        if not path.is_file():
            problems.append(f"{path}: no such file")
            continue
        relative = _relative_to_collection(path, collection)
        if relative is not None:
            if row_of is None:  # O(n) once per drop: ~10 ms at 100k images
                row_of = {p: r for r, p in enumerate(collection.paths)}
            row = row_of.get(relative)
            if row is not None:
                rows.append(row)
                continue
        if path.suffix.lower() not in extensions:
            problems.append(f"{path.name}: not an image file (use {', '.join(sorted(extensions))})")
            continue
        files.append(path)  # inside the folder but not indexed (yet) also lands here: embed it
    return rows, files, problems


def _relative_to_collection(path: Path, collection: SearchIndex | None) -> str | None:
    if collection is None:
        return None
    for candidate in (path.absolute(), path.resolve()):
        try:
            return candidate.relative_to(collection.folder).as_posix()
        except ValueError:
            continue
    return None


def _square(pixmap: QPixmap, side: int = RESULT_SIDE) -> QPixmap:
    """The thumbnail centred on a transparent square: portrait and landscape tiles line up."""
    scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
    square = QPixmap(side, side)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawPixmap((side - scaled.width()) // 2, (side - scaled.height()) // 2, scaled)
    painter.end()
    return square


class _ResultList(QListWidget):
    """Results as thumbnails; drags carry the files' URLs (as the grid's do) and only ever copy."""

    def __init__(self, state: AppState):
        super().__init__(objectName="queryResults")
        self.state = state

    def mimeData(self, items: Sequence[QListWidgetItem]) -> QMimeData:
        mime = QMimeData()
        paths = (self.state.path_of(item.data(ROW_ROLE)) for item in items)
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths if p is not None])
        return mime

    def startDrag(self, actions: Qt.DropAction) -> None:
        items = self.selectedItems()
        if not items:
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData(items))
        drag.setPixmap(items[0].icon().pixmap(64, 64))
        drag.exec(Qt.DropAction.CopyAction)  # never Move: a file manager would move the photo


class _ExampleTile(QFrame):
    def __init__(self, example: QueryExample, pixmap: QPixmap | None, on_remove, parent=None):
        super().__init__(parent)
        self.setObjectName("exampleTile")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout = QGridLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(EXAMPLE_SIDE, EXAMPLE_SIDE)
        self.set_pixmap(pixmap)
        self.image.setToolTip(str(example.path) if example.path else example.name)
        name = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        name.setText(name.fontMetrics().elidedText(example.name, Qt.TextElideMode.ElideMiddle, EXAMPLE_SIDE))
        self.remove = QToolButton(text="\u2715", objectName="removeExample", autoRaise=False)
        self.remove.setToolTip("Remove this example from the query")
        self.remove.setFixedSize(18, 18)
        self.remove.clicked.connect(on_remove)
        layout.addWidget(self.image, 0, 0)
        layout.addWidget(self.remove, 0, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        layout.addWidget(name, 1, 0)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is None or pixmap.isNull():
            self.image.setText("no preview")
        else:
            self.image.setPixmap(pixmap.scaled(EXAMPLE_SIDE, EXAMPLE_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))


class QueryPanel(QWidget):
    """Examples of the current query (drop / paste target) above its top-K results."""

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session, self.thumbnails = state, session, thumbnails
        self.setAcceptDrops(True)
        self._shown_examples: tuple[int, ...] | None = None  # None: never rendered
        self._tiles: list[_ExampleTile] = []
        self._items: dict[str, QListWidgetItem] = {}  # relative path -> result item
        self._embedding: set = set()  # the session's tasks embedding our drops and pastes
        self._placeholder = QPixmap(RESULT_SIDE, RESULT_SIDE)
        self._placeholder.fill(QColor(128, 128, 128, 60))
        self._placeholder_icon = QIcon(self._placeholder)
        self._icons: dict[str, QIcon] = {}  # relative path -> square result icon
        self._build()
        self._refresh_timer = QTimer(self, singleShot=True, interval=0, timeout=self._refresh)
        self._message_timer = QTimer(self, singleShot=True, timeout=lambda: self._say(""))
        self._say("")

        state.query_changed.connect(self._schedule)
        state.collection_changed.connect(self._collection_changed)
        state.selection_changed.connect(self._selection_changed)
        thumbnails.ready.connect(self._thumbnails_ready)
        self._refresh()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Query examples</b>"), 1)
        header.addWidget(QLabel("Top K"))
        self.k_spin = QSpinBox(minimum=1, maximum=1000, value=self.state.top_k)
        self.k_spin.setToolTip("How many results to show (and where the histogram's cut-off lies)")
        self.k_spin.valueChanged.connect(self.state.set_top_k)
        header.addWidget(self.k_spin)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove every example (Ctrl+Shift+X)")
        self.clear_button.clicked.connect(self.state.clear_query)
        header.addWidget(self.clear_button)

        self.drop_area = QFrame(objectName="dropArea")
        self.drop_area.setStyleSheet(
            "#dropArea { border: 2px dashed palette(mid); border-radius: 6px; }"
            "#dropArea[dragging=\"true\"] { border-color: palette(highlight); }")
        self.hint = QLabel(EMPTY_HINT, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.hint.setObjectName("emptyHint")
        self.hint.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(4, 4, 4, 4)
        self.strip_layout.addStretch(1)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.strip)
        self.scroll.setFixedHeight(EXAMPLE_SIDE + 52)
        area = QVBoxLayout(self.drop_area)
        area.setContentsMargins(4, 4, 4, 4)
        area.addWidget(self.hint)
        area.addWidget(self.scroll)
        self.drop_area.setMinimumHeight(EXAMPLE_SIDE + 60)

        self.message = QLabel(wordWrap=True, objectName="queryMessage")
        self.results_label = QLabel(NO_RESULTS, wordWrap=True)
        self.results = _ResultList(self.state)
        self.results.setViewMode(QListView.ViewMode.IconMode)
        self.results.setMovement(QListView.Movement.Static)
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.results.setIconSize(QSize(RESULT_SIDE, RESULT_SIDE))
        self.results.setGridSize(QSize(RESULT_SIDE + 16, RESULT_SIDE + 40))
        self.results.setUniformItemSizes(True)
        self.results.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.results.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.results.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.results.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.results.itemSelectionChanged.connect(self._results_selected)
        self.results.itemDoubleClicked.connect(lambda item: self.add_rows([item.data(ROW_ROLE)]))
        self.results.customContextMenuRequested.connect(self._results_menu)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.drop_area)
        layout.addWidget(self.message)
        layout.addWidget(self.results_label)
        layout.addWidget(self.results, 1)

    def sizeHint(self) -> QSize:
        return QSize(400, 700)

    # --- adding examples ------------------------------------------------------------------

    def paste(self) -> None:
        """Ctrl+V: an image on the clipboard, or image files copied in a file manager."""
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and (mime.hasUrls() or mime.hasText()) and self._take_files(mime):
            return
        image = clipboard.image()
        if not image.isNull():
            self.add_image(image)
            return
        self.session.query_failed.emit("The clipboard holds no image. Copy an image (or an image "
                                       "file in the file manager), then paste it here.")

    def add_image(self, image: QImage, name: str = "pasted image") -> None:
        self._embed([(png_bytes(image), name)])

    def add_rows(self, rows: Sequence[int], replace: bool = False) -> None:
        """Indexed images as examples (their vectors are known: no model work)."""
        c = self.state.collection
        if c is None:
            return
        if not replace:
            present = {e.path for e in self.state.examples}
            fresh = [int(r) for r in rows if c.folder / c.paths[r] not in present]
            if len(fresh) < len(rows):
                self._say("Already in the query: " + ", ".join(
                    Path(c.paths[r]).name for r in rows if int(r) not in fresh), seconds=5)
            rows = fresh
        if rows or replace:
            self.session.query_by_rows(list(rows), replace=replace)

    def add_paths(self, paths: Sequence[Path]) -> None:
        rows, files, problems = classify_paths(paths, self.state.collection)
        present = {e.path for e in self.state.examples}
        files = [f for f in files if f not in present]
        if rows:
            self.add_rows(rows)
        if files:
            self._embed([(f, f.name) for f in files])
        if problems:
            self.session.query_failed.emit("Some files could not be used as a query:\n" + "\n".join(problems))

    def _take_files(self, mime: QMimeData) -> bool:
        """Use the files a drop / the clipboard names; False when it names none."""
        urls = mime.urls() if mime.hasUrls() else []
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        if not urls and mime.hasText():
            paths = paths_in_text(mime.text())
        if paths:
            self.add_paths(paths)
            return True
        return False

    def _embed(self, items: list[tuple[Path | bytes, str]]) -> None:
        sources, names = zip(*items)
        task = self.session.query_by_files(list(sources), list(names))
        self._embedding.add(task)
        self._say(f"Embedding {len(sources)} image{'s' if len(sources) > 1 else ''}\u2026")
        task.finished.connect(lambda: self._embedded(task))

    def _embedded(self, task) -> None:
        self._embedding.discard(task)
        if not self._embedding:
            self._say("")

    @property
    def embedding(self) -> bool:
        """Whether dropped / pasted images are still being embedded."""
        return bool(self._embedding)

    def _say(self, text: str, seconds: float | None = None) -> None:
        """A line of status under the examples; `seconds`: clear it after that long."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if seconds is None:
            self._message_timer.stop()
        else:
            self._message_timer.start(int(seconds * 1000))

    # --- drag and drop --------------------------------------------------------------------

    def _acceptable(self, mime: QMimeData) -> bool:
        return mime.hasUrls() or mime.hasImage()

    def _set_dragging(self, on: bool) -> None:
        self.drop_area.setProperty("dragging", on)
        self.drop_area.style().unpolish(self.drop_area)
        self.drop_area.style().polish(self.drop_area)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self._set_dragging(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dragLeaveEvent(self, event) -> None:
        self._set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_dragging(False)
        mime = event.mimeData()
        if not self._acceptable(mime):
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)  # never let a drag source delete its file
        event.accept()
        if self._take_files(mime):
            return
        data = mime.imageData()  # an image dragged from a web browser or an image editor
        image = data if isinstance(data, QImage) else data.toImage() if isinstance(data, QPixmap) else QImage()
        if not image.isNull():
            self.add_image(image, "dropped image")
        else:
            self.session.query_failed.emit(
                "Only image files on this computer can be dropped here (save a web image first).")

    # --- rendering ------------------------------------------------------------------------

    def _collection_changed(self) -> None:
        self._icons.clear()  # another folder may reuse the same relative paths
        self._schedule()

    def _schedule(self) -> None:
        self._refresh_timer.start()  # once per event-loop turn, however many signals arrived

    def _refresh(self) -> None:
        state = self.state
        with signals_blocked(self.k_spin):
            self.k_spin.setValue(state.top_k)
        self.clear_button.setEnabled(bool(state.examples))
        self._render_examples()
        self._render_results()

    def _render_examples(self) -> None:
        examples = self.state.examples
        key = tuple(id(e) for e in examples)
        if key == self._shown_examples:
            return
        self._shown_examples = key
        for tile in self._tiles:
            tile.deleteLater()
        self._tiles = []
        for i, example in enumerate(examples):
            tile = _ExampleTile(example, self._example_pixmap(example),
                                lambda *_, i=i: self.state.remove_example(i), self.strip)
            self.strip_layout.insertWidget(i, tile)
            self._tiles.append(tile)
        self.hint.setVisible(not examples)
        self.scroll.setVisible(bool(examples))

    def _example_pixmap(self, example: QueryExample) -> QPixmap | None:
        if example.thumbnail:
            pixmap = QPixmap()
            if pixmap.loadFromData(example.thumbnail, "JPEG"):
                return pixmap
        relative = _relative_to_collection(example.path, self.state.collection) if example.path else None
        return self.thumbnails.pixmap(relative) if relative else None

    def _render_results(self) -> None:
        state, c = self.state, self.state.collection
        rows = state.top_rows()
        if state.query_vector is None:
            self.results_label.setText(NO_RESULTS)
        elif c is None or state.scores is None:
            self.results_label.setText("Results appear as soon as images are indexed.")
        else:
            self.results_label.setText(f"Top {len(rows)} of {len(c)} images, best first "
                                       "(click to select, double-click to add to the query)")
        selected = set(state.selection.tolist())
        with signals_blocked(self.results):
            self.results.clear()
            self._items = {}
            for rank, row in enumerate(rows, 1):
                path, score = c.paths[row], float(state.scores[row])
                item = QListWidgetItem(f"{score:.3f}\n{Path(path).name}")
                item.setData(ROW_ROLE, int(row))
                item.setToolTip(f"{c.folder / path}\n#{rank} \u00b7 similarity {score:.4f}")
                item.setIcon(self._icon(path))
                self.results.addItem(item)
                self._items[path] = item
                item.setSelected(int(row) in selected)

    def _icon(self, path: str) -> QIcon:
        """The result's square icon, kept: results are rebuilt on every query change."""
        icon = self._icons.get(path)
        if icon is None:
            pixmap = self.thumbnails.pixmap(path)
            if pixmap is None:
                return self._placeholder_icon  # not cached: `ready` will bring it
            if len(self._icons) > 2000:
                self._icons.clear()
            icon = self._icons[path] = QIcon(_square(pixmap))
        return icon

    def _thumbnails_ready(self, paths: list[str]) -> None:
        for path in paths:
            item = self._items.get(path)
            if item is not None:
                self._icons.pop(path, None)
                item.setIcon(self._icon(path))
        c = self.state.collection
        for tile, example in zip(self._tiles, self.state.examples):
            relative = _relative_to_collection(example.path, c) if example.path and not example.thumbnail else None
            if relative in paths:
                tile.set_pixmap(self.thumbnails.cached(relative))

    def result_paths(self) -> list[str]:
        """Relative paths of the results shown, top to bottom."""
        return [self.state.collection.paths[self.results.item(i).data(ROW_ROLE)]
                for i in range(self.results.count())]

    # --- selection ------------------------------------------------------------------------

    def _results_selected(self) -> None:
        self.state.select([item.data(ROW_ROLE) for item in self.results.selectedItems()], SOURCE)

    def _selection_changed(self, source: str) -> None:
        if source == SOURCE:
            return
        selected = set(self.state.selection.tolist())
        with signals_blocked(self.results):
            for i in range(self.results.count()):
                item = self.results.item(i)
                item.setSelected(item.data(ROW_ROLE) in selected)
        self.results.viewport().update()

    def _results_menu(self, pos: QPoint) -> None:
        item = self.results.itemAt(pos)
        if item is None:
            return
        row = item.data(ROW_ROLE)
        menu = QMenu(self)
        menu.addAction("Add to query", lambda: self.add_rows([row]))
        menu.addAction("Query by this image", lambda: self.add_rows([row], replace=True))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(str(self.state.path_of(row))))
        menu.popup(self.results.viewport().mapToGlobal(pos))

