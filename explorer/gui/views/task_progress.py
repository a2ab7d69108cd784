"""The one progress-and-cancel presenter for a background task that a view started: a bar
that follows the task's progress and a Cancel button, both shown only while it runs."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from ..controllers.tasks import Task


class TaskProgress(QWidget):
    """Shows the task last given to `track` until it finishes; Cancel cancels it."""

    def __init__(self, cancel_tip: str = "Stop; what is done so far is kept", parent: QWidget | None = None):
        super().__init__(parent)
        self.task: Task | None = None
        self.bar = QProgressBar(textVisible=True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(cancel_tip)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.setVisible(False)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done

    def track(self, task: Task) -> None:
        self.task = task
        self.bar.setRange(0, 0)  # busy until the first report says how much there is
        self.bar.setFormat("")
        task.progress.connect(lambda done, total, message: self._progress(task, done, total, message))
        task.finished.connect(lambda: self._finished(task))
        self.setVisible(True)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, task: Task, done: int, total: int, message: str) -> None:
        if task is self.task:
            self.bar.setRange(0, max(total, 0))
            self.bar.setValue(done)
            self.bar.setFormat("%v / %m" if total else message)

    def _finished(self, task: Task) -> None:
        if task is self.task:
            self.setVisible(False)
