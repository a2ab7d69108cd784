"""The one way the GUI runs work off its thread: core callables on superqt workers.

A core function takes `progress(done, total, message)` and `cancelled()`; `Tasks.start` passes
both when the function accepts them, and turns them into Qt signals delivered on the GUI thread.
Every task is of a `TaskKind`. Within a kind (and key, e.g. a side of a comparison) a newer
request supersedes an older one ("latest request wins"): starting one cancels its predecessor,
whose result is then dropped; a concurrent kind (each drop of query images, each page of
thumbnails) lets them all run. Every failure reaches one place, `Tasks.failed`, which the main
window shows to the user under its kind's title.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import traceback
from collections.abc import Callable
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from shiboken6 import isValid
from superqt.utils import create_worker

from ...core.tasks import CancelToken

log = logging.getLogger(__name__)


class TaskKind(Enum):
    """Every kind of background work the app does: (the title its failure is shown under or
    "" for one that fails quietly, whether several may run at once)."""

    OPEN = ("Could not open the collection", False)
    INDEX = ("Indexing failed", False)
    REBUILD = ("Could not rebuild the collection", False)
    LAYOUT = ("Could not compute the map", False)
    EMBED_QUERY = ("Could not use the query", True)  # each drop or paste: a second must not cancel the first
    EMBED_NEGATIVES = ("Could not use the negative examples", True)
    REGION = ("Could not use the region", True)
    THUMBNAILS = ("", True)  # a missing thumbnail shows as a blank tile; no dialog per tile
    PREVIEW = ("Could not show the preview", False)
    HEATMAPS = ("Could not draw the heatmaps", False)
    WHY_SIMILAR = ("Could not explain the similarity", False)
    EVALUATE = ("Could not evaluate retrieval", False)
    NEAREST_NEIGHBOURS = ("Could not find near-duplicates", False)
    DUPLICATE_GROUPS = ("Could not group near-duplicates", False)
    INDEX_REPRESENTATION = ("Could not index with that representation", False)
    REPRESENT = ("Could not compare representations", False)
    WARM_UP = ("", False)  # a large collection's first query made as quick as the next

    @property
    def title(self) -> str:
        return self.value[0]

    @property
    def concurrent(self) -> bool:
        return self.value[1]


class Task(QObject):
    """One background call. Signals arrive on the GUI thread."""

    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    finished = Signal()  # after succeeded/failed, or after a cancelled run ends

    def __init__(self, kind: TaskKind, parent: QObject | None = None):
        super().__init__(parent)
        self.kind = kind
        self.token = CancelToken()
        self.done = False

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token()


class Tasks(QObject):
    """Starts tasks, keeps the latest of each kind (and key), reports every failure."""

    failed = Signal(object, object)  # TaskKind, exception: the single error reporter listens here

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._latest: dict[tuple[TaskKind, str], Task] = {}
        self._running: set[Task] = set()
        self._serial = itertools.count()

    def start(
        self,
        kind: TaskKind,
        func: Callable[..., Any],
        *args: Any,
        key: str = "",
        on_result: Callable[[Any], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run `func(*args, **kwargs)` on a worker. `key`: requests of one kind that do not
        supersede each other (the two sides of a comparison)."""
        name = (kind, f"{key}#{next(self._serial)}" if kind.concurrent else key)
        previous = self._latest.get(name)
        if previous is not None and not previous.done:
            previous.cancel()
        task = Task(kind, self)
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
                log.error("%s failed:\n%s", kind.name, "".join(traceback.format_exception(error)))
                task.failed.emit(error)
                self.failed.emit(kind, error)

        def finished() -> None:
            if not isValid(task):
                return
            task.done = True
            self._running.discard(task)
            if kind.concurrent:
                self._latest.pop(name, None)  # one entry per task ever started would pile up
            task.finished.emit()

        create_worker(
            func, *args, _start_thread=True, _ignore_errors=True,
            _connect={"returned": returned, "errored": errored, "finished": finished}, **kwargs,
        )
        return task

    def latest(self, kind: TaskKind, key: str = "") -> Task | None:
        """The running task of this kind (and key), if any."""
        task = self._latest.get((kind, key))
        return task if task is not None and not task.done else None

    def running(self, *kinds: TaskKind) -> bool:
        """Whether any task of these kinds (any key) is running."""
        return any(task.kind in kinds and not task.done for task in self._running)

    def cancel(self, *kinds: TaskKind) -> None:
        """Cancel every running task of these kinds."""
        for task in list(self._running):
            if task.kind in kinds:
                task.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and wait for the workers (on quit, and after each test)."""
        for task in list(self._running):
            task.cancel()
        QThreadPool.globalInstance().waitForDone(timeout_ms)
