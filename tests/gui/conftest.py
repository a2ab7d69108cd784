"""Fixtures for GUI tests; plain helpers live in gui_helpers.py (import them from there)."""

from gui_helpers import (  # noqa: F401 (fixtures, and helpers re-exported for convenience)
    indexed_folder, ready_window, rows_by_name, wait_until_ready, window,
)
from helpers import copy_sample  # noqa: F401
