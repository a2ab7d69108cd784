"""The two hooks every long core operation takes: progress reports and a cancel check.

Core functions know nothing of threads: the GUI's worker and the CLI's progress bar plug in here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# progress(done, total, message); total may be 0 when unknown.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, message: str) -> None:
    pass


class CancelToken:
    """A thread-safe flag; call it to ask whether the operation should stop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()
