"""The list of named queries: save the current query under a name, show / hide each one in the
histogram overlay, rename, recolour, delete, and make one the current query again."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QColorDialog, QGridLayout, QInputDialog, QLabel, QListWidget,
    QListWidgetItem, QMenu, QPushButton, QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core.query_book import QueryBookError
from ...state.named_queries import NamedQueries

NAME_ROLE = Qt.ItemDataRole.UserRole
EMPTY_HINT = ("No saved queries yet. Build a query from example images, then "
              "\u201cSave current\u2026\u201d to keep it and compare it with others.")


def swatch(colour: str, side: int = 14) -> QIcon:
    pixmap = QPixmap(side, side)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class NamedQueriesView(QWidget):
    """Named queries of the open collection, persisted with it by NamedQueries."""

    problem = Signal(str)

    def __init__(self, analysis: NamedQueries, parent: QWidget | None = None):
        super().__init__(parent)
        self.analysis, self.state = analysis, analysis.state
        self._build()
        analysis.queries_changed.connect(self._render)
        self.state.query.changed.connect(self._update_buttons)
        self.state.collection_changed.connect(self._update_buttons)
        self._render()

    def _build(self) -> None:
        self.list = QListWidget(objectName="namedQueries")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setIconSize(QSize(14, 14))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setToolTip("Tick a query to overlay its distribution; double-click to rename")
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.hint = QLabel(EMPTY_HINT, wordWrap=True)

        self.save_button = QPushButton("Save current\u2026")
        self.save_button.setToolTip("Keep the current query (its examples and negatives) under a name")
        self.save_button.clicked.connect(self._ask_save)
        self.update_button = QPushButton("Update")
        self.update_button.setToolTip("Replace the selected query's examples by the current query's")
        self.update_button.clicked.connect(lambda: self.update_selected())
        self.current_button = QPushButton("Make current")
        self.current_button.setToolTip("Use the selected query's examples as the current query")
        self.current_button.clicked.connect(lambda: self.make_selected_current())
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Forget the selected query (it is removed from the collection's saved queries)")
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        buttons = QGridLayout()  # two by two: the dock stays narrow
        for i, button in enumerate((self.save_button, self.current_button, self.update_button, self.delete_button)):
            buttons.addWidget(button, i // 2, i % 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def sizeHint(self) -> QSize:
        return QSize(300, 240)

    # --- rendering ------------------------------------------------------------------------

    def _render(self) -> None:
        analysis = self.analysis
        selected = self.selected_name()
        with signals_blocked(self.list):
            self.list.clear()
            for name in analysis.names():
                query = analysis.book.get(name)
                item = QListWidgetItem(swatch(analysis.colour_of(name)), name)
                item.setData(NAME_ROLE, name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable)
                item.setCheckState(Qt.CheckState.Unchecked if name in analysis.hidden else Qt.CheckState.Checked)
                negatives = f", {len(query.negatives)} negative (weight {query.negative_weight:g})" \
                    if query.negatives else ""
                item.setToolTip(f"{name}: {len(query.positives)} example(s){negatives}\n"
                                + "\n".join(e.path or e.name for e in query.positives[:8]))
                self.list.addItem(item)
                if name == selected:
                    item.setSelected(True)
        self.hint.setVisible(not analysis.names())
        self._update_buttons()

    def _update_buttons(self, *_) -> None:
        has_selection = self.selected_name() is not None
        self.save_button.setEnabled(self.analysis.can_save())
        self.update_button.setEnabled(has_selection and self.analysis.can_save())
        self.current_button.setEnabled(has_selection)
        self.delete_button.setEnabled(has_selection)

    def selected_name(self) -> str | None:
        items = self.list.selectedItems()
        return items[0].data(NAME_ROLE) if items else None

    def select(self, name: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setSelected(item.data(NAME_ROLE) == name)

    # --- actions --------------------------------------------------------------------------

    def _ask_save(self) -> None:
        suggestion = ", ".join(e.name for e in self.state.query.positives[:2])
        name, ok = QInputDialog.getText(self, "Save query", "Name of this query:", text=suggestion)
        if ok:
            self.save_current(name)

    def save_current(self, name: str) -> str | None:
        """Keep the current query under `name`; a problem (empty or taken name) is reported."""
        try:
            stored = self.analysis.save_current(name)
        except QueryBookError as err:
            self.problem.emit(str(err))
            return None
        self.select(stored)
        return stored

    def update_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.analysis.save_current(name, overwrite=True)
            self.select(name)

    def make_selected_current(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.analysis.make_current(name)

    def delete_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.analysis.remove(name)

    def _item_changed(self, item: QListWidgetItem) -> None:
        old, new = item.data(NAME_ROLE), item.text()
        if new.strip() != old:
            try:
                self.analysis.rename(old, new)
            except QueryBookError as err:
                self.problem.emit(str(err))
                self._render()  # back to the old name
                return
            self.select(new.strip())
            return
        self.analysis.set_visible(old, item.checkState() == Qt.CheckState.Checked)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        name = item.data(NAME_ROLE)
        menu = QMenu(self)
        menu.addAction("Make current", lambda: self.analysis.make_current(name))
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("Change colour\u2026", lambda: self._choose_colour(name))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.analysis.remove(name))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def _choose_colour(self, name: str) -> None:
        colour = QColorDialog.getColor(QColor(self.analysis.colour_of(name)), self, f"Colour of {name}")
        if colour.isValid():
            self.analysis.set_colour(name, colour.name())
