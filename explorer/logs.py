"""The app's log file: one line per milestone a user or a bug report needs, and every error.

    <per-user log directory>/explorer.log   (Help > Show log; EXPLORER_LOG_DIR overrides it)

Rotated at LOG_BYTES, LOG_BACKUPS old files kept. `explorer --log-level debug` raises the detail;
the command line (`explorer index` ...) logs to stderr at that level instead of to the file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

import platformdirs

LOG_NAME = "explorer.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3
LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LEVEL = "info"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LEVEL_OPTION = "--log-level"


def log_dir() -> Path:
    override = os.environ.get("EXPLORER_LOG_DIR")
    return Path(override) if override else Path(platformdirs.user_log_dir("Explorer", False))


def log_file() -> Path:
    return log_dir() / LOG_NAME


def take_level_option(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without `--log-level LEVEL` (or `--log-level=LEVEL`), and that level (None: not given)."""
    level, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == LEVEL_OPTION and i + 1 < len(argv):
            level, i = argv[i + 1], i + 2
            continue
        if arg.startswith(LEVEL_OPTION + "="):
            level = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    if level is not None and level.lower() not in LEVELS:
        raise SystemExit(f"explorer: error: {LEVEL_OPTION} must be one of {', '.join(LEVELS)}, not {level!r}")
    return rest, level and level.lower()


def log_to_file(level: str = DEFAULT_LEVEL) -> Path | None:
    """Send the package's log to the rotated file, and uncaught exceptions with it.
    Returns the file, or None when it cannot be written (the app runs on without it)."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                       encoding="utf-8")
    except OSError as err:
        print(f"explorer: no log file ({err})", file=sys.stderr)
        return None
    _attach(handler, level)
    previous_hook = sys.excepthook

    def log_uncaught(kind, error, traceback) -> None:  # a slot that raised: Qt only prints it
        logging.getLogger("explorer").error("uncaught exception", exc_info=(kind, error, traceback))
        previous_hook(kind, error, traceback)

    sys.excepthook = log_uncaught
    return path


def warnings_to_stderr() -> None:
    """A command's warnings (a repaired collection file) as plain lines: 'explorer: repaired ...'."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("explorer: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger("explorer").addHandler(handler)


def log_to_stderr(level: str = DEFAULT_LEVEL) -> None:
    _attach(logging.StreamHandler(), level)


def _attach(handler: logging.Handler, level: str) -> None:
    handler.setFormatter(logging.Formatter(FORMAT))
    package = logging.getLogger("explorer")
    package.setLevel(level.upper())
    package.addHandler(handler)
