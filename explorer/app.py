"""The desktop app's entry point: `explorer` (no command), `explorer FOLDER`, `explorer open FOLDER`."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "open":
        args = args[1:]
    folder = args[0] if args else None

    from PySide6.QtWidgets import QApplication

    from .gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Explorer")
    app.setOrganizationName("Explorer")
    window = MainWindow()
    window.show()
    window.start(folder)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
