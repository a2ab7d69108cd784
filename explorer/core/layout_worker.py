"""UMAP in a child process, so that the process that asks for a map never freezes.

A fit in a thread of the app's own process would freeze its window: numba compiles UMAP's code
on the first fit in every process (about 10 s), and compiling holds the GIL for up to 0.4 s at a
time. The child stays up between fits, so only its first fit pays for compiling. Vectors go to
the child, and positions come back, as .npy files (loaded with allow_pickle=False: no pickle
anywhere); each request and answer is one line of JSON on the child's stdin and stdout. The
child ends when its stdin closes, so it never outlives the app, even one killed with -9.

    python -m explorer.core.layout_worker        (the child; the frozen app: Explorer --layout-worker)
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

WORKER_FLAG = "--layout-worker"  # the frozen app's hidden first argument (see cli.main)
POLL_S = 0.1  # how often a waiting fit looks at its cancel token


class LayoutFailed(Exception):
    """The child could not compute the map (its message says why)."""


def fit_umap(vectors: np.ndarray, seed: int | None, n_neighbours: int) -> np.ndarray:
    """UMAP (cosine) of `vectors` to 2D, in this process."""
    import umap  # heavy (numba): only the child imports it

    n = len(vectors)
    reducer = umap.UMAP(
        n_neighbors=min(n_neighbours, n - 1), min_dist=0.1, metric="cosine",
        random_state=seed, n_jobs=1 if seed is not None else -1, low_memory=True,
        init="spectral" if n > 10 else "random",
    )
    return reducer.fit_transform(vectors).astype(np.float32)


class LayoutProcess:
    """The parent's handle on the child: one fit at a time, cancellable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue[str] = queue.Queue()

    def fit(self, vectors: np.ndarray, seed: int | None, n_neighbours: int,
            cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
        """Positions (N, 2) of `vectors`; None when cancelled (the child is then stopped)."""
        with self._lock, tempfile.TemporaryDirectory(prefix="explorer-layout-") as scratch:
            vectors_file, xy_file = Path(scratch) / "vectors.npy", Path(scratch) / "xy.npy"
            np.save(vectors_file, np.ascontiguousarray(vectors, np.float32))
            process = self._running()
            request = {"vectors": str(vectors_file), "xy": str(xy_file), "seed": seed,
                       "n_neighbours": n_neighbours}
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
            except OSError as err:
                self.stop()
                raise LayoutFailed(f"the map process is gone ({err})") from err
            while True:
                if cancelled():
                    self.stop()  # UMAP has no cancel hook; the next fit starts a fresh child
                    return None
                try:
                    line = self._answers.get(timeout=POLL_S)
                    break
                except queue.Empty:
                    if process.poll() is not None and self._answers.empty():
                        self.stop()
                        raise LayoutFailed(f"the map process ended (exit status {process.returncode})")
            if not line.strip():  # it died mid-fit (out of memory, killed)
                self.stop()
                raise LayoutFailed(f"the map process ended (exit status {process.wait()})")
            answer = json.loads(line)
            if "error" in answer:
                raise LayoutFailed(answer["error"])
            return np.load(xy_file, allow_pickle=False)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _running(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        frozen = getattr(sys, "frozen", False)  # the bundle's executable is the `explorer` command
        command = [sys.executable, WORKER_FLAG] if frozen else [sys.executable, "-m", __name__]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console on Windows
        )
        self._answers = queue.Queue()
        threading.Thread(target=_forward_lines, args=(self._process.stdout, self._answers),
                         daemon=True, name="layout-answers").start()
        return self._process


def _forward_lines(stream, answers: queue.Queue) -> None:
    for line in stream:
        answers.put(line)
    answers.put("")  # end of stream: the child is gone


_shared: LayoutProcess | None = None


def shared_process() -> LayoutProcess:
    """The one child of this process (started on the first fit, stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = LayoutProcess()
        atexit.register(_shared.stop)
    return _shared


def worker_main() -> int:
    """The child: fit each request read from stdin until stdin closes."""
    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever a library prints must not reach the answer stream
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            vectors = np.load(request["vectors"], allow_pickle=False)
            xy = fit_umap(vectors, request["seed"], int(request["n_neighbours"]))
            tmp = request["xy"] + ".tmp.npy"
            np.save(tmp, xy)
            os.replace(tmp, request["xy"])
            answer = {"ok": True}
        except Exception as err:  # noqa: BLE001 (every failure goes back to the parent as text)
            answer = {"error": f"{type(err).__name__}: {err}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
