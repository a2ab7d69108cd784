"""The desktop app's entry point: `explorer` (no command), `explorer FOLDER`, `explorer open FOLDER`."""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path


WARM_UP_DELAY_MS = 1500  # after the window's first paints and the collection's opening


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("explorer")
    except PackageNotFoundError:  # a frozen app without its metadata
        return "(version unknown)"


def _no_display() -> bool:
    """On X11/Wayland systems Qt aborts without a display; say so instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None, log_level: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if log_level is None:  # started as `explorer-app`, not through the `explorer` command
        from .logs import take_level_option

        args, log_level = take_level_option(args)
    if args and args[0] == "open":
        args = args[1:]
    folder = args[0] if args else None
    if _no_display():
        print("explorer: no display found. Run it on a desktop, under xvfb-run, or use the "
              "command line (explorer --help; `explorer demo` searches the sample headless).",
              file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .core.layout_worker import warm_up_in_background
    from .gui.main_window import FolderOpenRequests, MainWindow, application_icon
    from .logs import DEFAULT_LEVEL, log_to_file

    log_to_file(log_level or DEFAULT_LEVEL)
    logging.getLogger(__name__).info("Explorer %s started (Python %s, %s)", _version(),
                                     platform.python_version(), platform.platform())

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Explorer")
    app.setOrganizationName("Explorer")
    app.setDesktopFileName("explorer")  # Wayland shells match the window to explorer.desktop
    app.setWindowIcon(application_icon())
    window = MainWindow()
    window.show()
    window.start(folder)
    app.installEventFilter(FolderOpenRequests(window))
    # numba compiles UMAP's code in the map process now, while the first map is not yet asked for.
    QTimer.singleShot(WARM_UP_DELAY_MS, warm_up_in_background)
    probe = os.environ.get("EXPLORER_STARTUP_PROBE")  # packaging/startup_time.py times start-up
    if probe:
        QTimer.singleShot(0, lambda: Path(probe).write_text("window shown\n"))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
