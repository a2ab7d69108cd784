"""The one way the GUI runs work off its thread: core callables on superqt workers.

A core function takes `progress(done, total, message)` and `cancelled()`; `Tasks.start` passes
both when the function accepts them, and turns them into Qt signals delivered on the GUI thread.
Tasks share a name when a newer request supersedes an older one ("latest request wins"):
starting one cancels its predecessor, whose result is then dropped. Every failure reaches one
place, `Tasks.failed`, which the main window shows to the user.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from shiboken6 import isValid
from superqt.utils import create_worker

from ...core.tasks import CancelToken

log = logging.getLogger(__name__)


class Task(QObject):
    """One background call. Signals arrive on the GUI thread."""

    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    finished = Signal()  # after succeeded/failed, or after a cancelled run ends

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.done = False

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token()


class Tasks(QObject):
    """Starts tasks, keeps the latest of each name, reports every failure."""

    failed = Signal(str, object)  # task name, exception: the single error reporter listens here

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._latest: dict[str, Task] = {}
        self._running: set[Task] = set()

    def start(
        self,
        name: str,
        func: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        previous = self._latest.get(name)
        if previous is not None and not previous.done:
            previous.cancel()
        task = Task(name, self)
        self._latest[name] = task
        self._running.add(task)
        accepted = inspect.signature(func).parameters
        if "progress" in accepted:
            kwargs["progress"] = task.progress.emit  # emitted from the worker thread: queued
        if "cancelled" in accepted:
            kwargs["cancelled"] = task.token
        if on_progress is not None:
            task.progress.connect(on_progress)

        def returned(value: Any) -> None:
            if not isValid(task):  # its window closed and deleted it: nobody left to tell
                return
            if self._latest.get(name) is task and not task.cancelled:
                task.succeeded.emit(value)
                if on_result is not None:
                    on_result(value)

        def errored(error: BaseException) -> None:
            if not isValid(task):
                return
            if self._latest.get(name) is task and not task.cancelled:
                log.error("%s failed:\n%s", name, "".join(traceback.format_exception(error)))
                task.failed.emit(error)
                self.failed.emit(name, error)

        def finished() -> None:
            if not isValid(task):
                return
            task.done = True
            self._running.discard(task)
            task.finished.emit()

        create_worker(
            func, *args, _start_thread=True, _ignore_errors=True,
            _connect={"returned": returned, "errored": errored, "finished": finished}, **kwargs,
        )
        return task

    def latest(self, name: str) -> Task | None:
        task = self._latest.get(name)
        return task if task is not None and not task.done else None

    def cancel(self, name: str) -> None:
        task = self._latest.get(name)
        if task is not None:
            task.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and wait for the workers (on quit, and after each test)."""
        for task in list(self._running):
            task.cancel()
        QThreadPool.globalInstance().waitForDone(timeout_ms)
