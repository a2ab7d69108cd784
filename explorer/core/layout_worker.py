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
import functools
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
WORKER_FLAG = "--layout-worker"  # the frozen app's hidden first argument (see cli.main)
WARM_UP_POINTS = 40  # over init="spectral"'s threshold, so the warm-up compiles what a real fit runs
POLL_S = 0.1  # how often a waiting fit looks at its cancel token
MIN_DIST = 0.1  # UMAP's min_dist: how tightly similar images pack on the map


class LayoutFailed(Exception):
    """The child could not compute the map (its message says why)."""


@functools.cache
def _umap():
    """umap, imported (heavy: numba; only the child imports it) with all its numba code cached.

    umap and pynndescent mark only some of their functions `cache=True`: the others (the layout's
    epochs, smooth_knn_dist, ...) were compiled again on the first fit of every session, 12-13 s
    on 2 cores even with a warm cache. Their code is module-level and fixed for an installed
    version, so caching it is as safe as for the rest: the first fit after a warm start now takes
    0.1 s instead of 13.5 s (import 2-3 s)."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    # A few (pynndescent's nn_descent) hold dynamic globals: numba would print so at every fit (its
    # message starts with colour codes) and compiles them anew each session.
    warnings.filterwarnings("ignore", ".*Cannot cache compiled function", NumbaWarning)

    import umap  # imports pynndescent too

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("umap", "pynndescent"):
            for function in list(vars(module).values()):
                if isinstance(function, Dispatcher) and isinstance(function._cache, NullCache):
                    try:
                        function.enable_caching()
                    except RuntimeError:  # numba finds no cache directory for it: compiled as before
                        pass
    return umap


def fit_umap(vectors: np.ndarray, seed: int | None, n_neighbours: int) -> np.ndarray:
    """UMAP (cosine) of `vectors` to 2D, in this process."""
    umap = _umap()
    n = len(vectors)
    reducer = umap.UMAP(
        n_neighbors=min(n_neighbours, n - 1), min_dist=MIN_DIST, metric="cosine",
        random_state=seed, n_jobs=1 if seed is not None else -1, low_memory=True,
        init="spectral" if n > 10 else "random",
    )
    return reducer.fit_transform(vectors).astype(np.float32)


def transform_umap(neighbours: np.ndarray, distances: np.ndarray, base_xy: np.ndarray,
                   seed: int | None) -> np.ndarray:
    """Place new points on an existing map as `UMAP.transform` does, without the fitted model
    (which only pickling could keep): from each new point's nearest laid-out points
    (`neighbours`, M x k rows of `base_xy`, at cosine `distances`), the same fuzzy graph, the
    same start (the weighted mean of those neighbours) and the same epochs of optimisation,
    the laid-out points held still."""
    import scipy.sparse

    _umap()
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import (
        compute_membership_strengths, find_ab_params, init_graph_transform, make_epochs_per_sample,
        smooth_knn_dist,
    )

    k = neighbours.shape[1]
    distances = np.ascontiguousarray(distances, np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=0.0)
    rows, cols, vals, _ = compute_membership_strengths(neighbours, distances, sigmas, rhos, bipartite=True)
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(neighbours), len(base_xy)))
    csr = graph.tocsr()
    csr.eliminate_zeros()
    base_xy = np.ascontiguousarray(base_xy, np.float32)
    xy = init_graph_transform(csr, base_xy).astype(np.float32)
    n_epochs = 100 if len(neighbours) <= 10_000 else 30
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    a, b = find_ab_params(1.0, MIN_DIST)
    rng_state = np.random.RandomState(seed).randint(np.iinfo(np.int32).min, np.iinfo(np.int32).max, 3)
    return optimize_layout_euclidean(
        xy, base_xy.copy(), graph.row, graph.col, n_epochs, len(base_xy),
        make_epochs_per_sample(graph.data, n_epochs), a, b, rng_state.astype(np.int64),
        1.0, 0.25, 5.0,  # UMAP's repulsion, a quarter of its learning rate, negative samples
    ).astype(np.float32)


class LayoutProcess:
    """The parent's handle on the child: one fit at a time, cancellable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue[str] = queue.Queue()

    def fit(self, vectors: np.ndarray, seed: int | None, n_neighbours: int,
            cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
        """Positions (N, 2) of `vectors`; None when cancelled (the child is then stopped)."""
        return self._ask("fit", {"vectors": np.ascontiguousarray(vectors, np.float32)},
                         {"seed": seed, "n_neighbours": n_neighbours}, cancelled)

    def warm_up(self) -> None:
        """A tiny fit, so that numba has compiled (or loaded from its cache) UMAP's code before
        the first real map is asked for. Blocks its caller: call it on a thread of its own.
        A real fit asked meanwhile waits for it, which costs nothing: it would compile too."""
        vectors = np.random.default_rng(0).random((WARM_UP_POINTS, 8), dtype=np.float32)
        started = time.monotonic()
        try:
            self._ask("fit", {"vectors": vectors}, {"seed": 0, "n_neighbours": 5}, lambda: False)
        except LayoutFailed as err:
            log.warning("warming up the map process failed: %s", err)
            return
        # About 30 s when numba compiles everything (first run), 2-3 s from its cache.
        log.info("map process warmed up in %.1f s", time.monotonic() - started)

    def transform(self, neighbours: np.ndarray, distances: np.ndarray, base_xy: np.ndarray,
                  seed: int | None, cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
        """`transform_umap`, in the child."""
        arrays = {"neighbours": np.asarray(neighbours, np.int32), "distances": distances, "base_xy": base_xy}
        return self._ask("transform", arrays, {"seed": seed}, cancelled)

    def _ask(self, op: str, arrays: dict[str, np.ndarray], options: dict,
             cancelled: Callable[[], bool]) -> np.ndarray | None:
        with self._lock, tempfile.TemporaryDirectory(prefix="explorer-layout-") as scratch:
            request = {"op": op, "xy": str(Path(scratch) / "xy.npy"), **options}
            for name, array in arrays.items():
                request[name] = str(Path(scratch) / f"{name}.npy")
                np.save(request[name], array)
            process = self._running()
            assert process.stdin is not None, "started with stdin=PIPE"
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
            except OSError as err:
                self.stop()
                raise LayoutFailed(f"the map process is gone ({err})") from err
            while True:
                if cancelled():
                    self.stop()  # UMAP has no cancel hook; the next request starts a fresh child
                    return None
                try:
                    line = self._answers.get(timeout=POLL_S)
                    break
                except queue.Empty:
                    pass
            if not line.strip():  # it died mid-fit (out of memory, killed)
                self.stop()
                raise LayoutFailed(f"the map process ended (exit status {process.wait()})")
            answer = json.loads(line)
            if "error" in answer:
                raise LayoutFailed(answer["error"])
            return np.load(request["xy"], allow_pickle=False)

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
            env=child_environment(),
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console on Windows
        )
        self._answers = queue.Queue()
        threading.Thread(target=_forward_lines, args=(self._process.stdout, self._answers),
                         daemon=True, name="layout-answers").start()
        return self._process


def numba_cache_dir() -> Path:
    """Where numba keeps UMAP's compiled code: the per-user cache, so that it persists and is
    written even where site-packages is read-only. (The frozen app has no source files for
    numba to key a cache dir on: numba then uses its own per-user cache, ~/.cache/numba.)"""
    from .graphs import cache_root

    return cache_root() / "numba"


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    return env


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


def warm_up_in_background() -> None:
    """`LayoutProcess.warm_up` of the shared process, on a thread of its own."""
    threading.Thread(target=shared_process().warm_up, daemon=True, name="layout-warm-up").start()


def worker_main() -> int:
    """The child: answer each request read from stdin until stdin closes."""
    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever a library prints must not reach the answer stream
    # The lowest priority: the map, and numba's compiling in a warm-up, run on what indexing and
    # the window leave idle (at nice 5, a warm-up made a first run's indexing 1.9x slower on 2 cores).
    if hasattr(os, "nice"):
        os.nice(19)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            load = lambda name: np.load(request[name], allow_pickle=False)  # noqa: E731
            if request["op"] == "fit":
                xy = fit_umap(load("vectors"), request["seed"], int(request["n_neighbours"]))
            else:
                xy = transform_umap(load("neighbours"), load("distances"), load("base_xy"), request["seed"])
            tmp = request["xy"] + ".tmp.npy"
            np.save(tmp, xy)
            os.replace(tmp, request["xy"])
            answer: dict[str, object] = {"ok": True}
        except Exception as err:  # noqa: BLE001 (every failure goes back to the parent as text)
            answer = {"error": f"{type(err).__name__}: {err}"}
        try:
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
        except BrokenPipeError:  # the app quit (or was killed) while this fit ran: nobody to tell
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
