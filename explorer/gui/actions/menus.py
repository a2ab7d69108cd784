"""The menu bar, built from ids: code that adds an entry names the menu by its id, never by
the text a user reads (which a translation or a new mnemonic would change)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget


class MenuId(Enum):
    """The window's top-level menus, in the order they appear."""

    FILE = "&File"
    QUERY = "&Query"
    VIEW = "&View"
    SETTINGS = "&Settings"
    HELP = "&Help"


def build_menus(bar: QMenuBar) -> dict[MenuId, QMenu]:
    menus = {}
    for menu_id in MenuId:
        menu = menus[menu_id] = bar.addMenu(menu_id.value)
        menu.setObjectName(f"{menu_id.name.lower()}Menu")
        menu.setToolTipsVisible(True)
    return menus


def add_action(menu: QMenu, text: str, slot: Callable[[], object], shortcut: str | QKeySequence.StandardKey | None = None,
               tip: str = "", parent: QWidget | None = None) -> QAction:
    """One entry: its slot is called without the `checked` argument Qt passes."""
    action = QAction(text, parent or menu)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setStatusTip(tip)
    action.setToolTip(tip)
    action.triggered.connect(lambda *_: slot())
    menu.addAction(action)
    return action
