"""File > Export: what to write (the current query's ranking, the grid's filter, the selection,
plots as PNG, near-duplicate groups) and asking where; the writing itself is export.py's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from ...core import analysis
from ...core.export import copy_into_folder, write_list
from ..state.app_state import AppState
from ..views.analysis.duplicates_view import DuplicatesView

RANKING, FILTER, SELECTION = "ranking", "filter", "selection"
WHAT = {RANKING: "the current query's ranking", FILTER: "the images the grid shows (e.g. a histogram range)",
        SELECTION: "the selected images"}
LIST_FILTERS = "CSV (*.csv);;JSON (*.json)"


def rows_to_export(state: AppState, what: str) -> np.ndarray:
    """Rows of one kind of list, in the order they are written."""
    if what == RANKING:
        return analysis.ranking(state.query.scores) if state.query.scores is not None else np.empty(0, np.int64)
    if what == FILTER:
        return state.grid_filter if state.grid_filter is not None else np.empty(0, np.int64)
    if what == SELECTION:
        rows = state.selection
        # Best first when there is a query, as every list in the app is; else row order.
        return rows[np.argsort(-state.query.scores[rows], kind="stable")] if state.query.scores is not None else rows
    raise ValueError(f"nothing called {what!r} to export")


def paths_and_scores(state: AppState, what: str) -> tuple[list[Path], np.ndarray | None]:
    rows = rows_to_export(state, what)
    c = state.collection
    if c is None:
        return [], None
    scores = state.query.scores[rows] if state.query.scores is not None else None
    return [c.folder / c.paths[r] for r in rows], scores


class ExportActions(QObject):
    """The File > Export submenu: the lists of `state`, the groups `duplicates` found, and the
    plots `plots` names (a name -> the widget to save, looked up when it is saved)."""

    problem = Signal(str, str)  # title, text: a write failed
    done = Signal(str)  # what was written, for the status bar

    def __init__(self, state: AppState, duplicates: DuplicatesView, plots: dict[str, Callable[[], QWidget]],
                 parent: QWidget):
        super().__init__(parent)
        self.state, self.duplicates, self.plots, self.parent_widget = state, duplicates, plots, parent
        self.menu = QMenu("E&xport", parent)
        self.menu.setToolTipsVisible(True)
        self.list_actions: dict[str, QAction] = {}
        for what, text in ((RANKING, "Current query's &ranking as CSV/JSON\u2026"),
                           (FILTER, "&Grid's images (histogram range) as CSV/JSON\u2026"),
                           (SELECTION, "&Selection as CSV/JSON\u2026")):
            self.list_actions[what] = self._add(text, lambda w=what: self._ask_list(w),
                                                f"Absolute paths and similarity scores of {WHAT[what]}")
        self.menu.addSeparator()
        self.copy_actions = {what: self._add(text, lambda w=what: self._ask_copy(w),
                                             f"Copy (never move) {WHAT[what]} into a folder")
                             for what, text in ((SELECTION, "Copy selection into &folder\u2026"),
                                                (FILTER, "Copy grid's images into f&older\u2026"))}
        self.menu.addSeparator()
        titles = {"histogram": "&Histogram as PNG\u2026", "map": "&Map as PNG\u2026",
                  "compare": "&Compare scatter as PNG\u2026"}
        self.png_actions = {name: self._add(titles[name], lambda n=name: self._ask_png(n),
                                            f"Save {titles[name][:-1]} as shown") for name in plots}
        self.menu.addSeparator()
        self.groups_action = self._add("Near-&duplicate groups as JSON\u2026", duplicates.ask_export,
                                       "The groups found in the Near-duplicates panel")
        self.menu.aboutToShow.connect(self._update_enabled)

    def _add(self, text: str, slot, tip: str) -> QAction:
        action = self.menu.addAction(text)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda *_: slot())
        return action

    def _update_enabled(self) -> None:
        for what, action in self.list_actions.items():
            action.setEnabled(self.state.collection is not None and len(rows_to_export(self.state, what)) > 0)
        for what, action in self.copy_actions.items():
            action.setEnabled(self.state.collection is not None and len(rows_to_export(self.state, what)) > 0)
        self.groups_action.setEnabled(self.duplicates.groups is not None)

    # --- lists ----------------------------------------------------------------------------

    def export_list(self, what: str, target: Path) -> int:
        """Write one list as CSV or JSON (by suffix); returns how many images were written."""
        paths, scores = paths_and_scores(self.state, what)
        write_list(paths, None if scores is None else scores.tolist(), target)
        return len(paths)

    def copy_list(self, what: str, folder: Path) -> list[Path]:
        paths, _ = paths_and_scores(self.state, what)
        return copy_into_folder(paths, folder)

    def _parent(self) -> QWidget:
        return self.parent_widget

    def _ask_list(self, what: str) -> None:
        chosen_name, chosen = QFileDialog.getSaveFileName(self._parent(), f"Export {WHAT[what]}",
                                                          f"{what}.csv", LIST_FILTERS)
        if not chosen_name:
            return
        target = Path(chosen_name)
        if not target.suffix:
            target = target.with_suffix(".json" if "json" in chosen.lower() else ".csv")
        try:
            count = self.export_list(what, target)
        except OSError as err:
            self.problem.emit("Export", f"Could not write {target}: {err}")
            return
        self.done.emit(f"Wrote {count} images to {target}")

    def _ask_copy(self, what: str) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent(), f"Copy {WHAT[what]} into")
        if not folder:
            return
        try:
            copied = self.copy_list(what, Path(folder))
        except OSError as err:
            self.problem.emit("Copy", f"Could not copy into {folder}: {err}")
            return
        self.done.emit(f"Copied {len(copied)} images into {folder}")

    # --- pictures -------------------------------------------------------------------------

    def widget_for(self, name: str) -> QWidget:
        return self.plots[name]()

    def save_png(self, name: str, target: Path) -> bool:
        """Save a plot as shown on screen (at the screen's resolution)."""
        return self.widget_for(name).grab().save(str(target), "PNG")

    def _ask_png(self, name: str) -> None:
        target, _ = QFileDialog.getSaveFileName(self._parent(), f"Save the {name} as PNG", f"{name}.png",
                                                "PNG image (*.png)")
        if target and not self.save_png(name, Path(target)):
            self.problem.emit("Export", f"Could not write {target}")
