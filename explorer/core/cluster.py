"""Embedding on a Ray cluster (`explorer index FOLDER --ray`): one Ray Data job does the forward
passes of a run's new and changed files; the scan, the diff and the store stay this process's.

Each worker process loads the model once and runs the local pipeline (embed.embed_batches: the
same decoder, model spec, preprocessing and backend choice) over the files Ray hands it, and sends
back vectors, thumbnails and skip reasons. This process, the driver, commits each batch as it
arrives, exactly as a local run does, so killing the job or the driver loses only the batches in
flight, and the next run's diff continues where this one stopped. Workers never touch the
collection: it lives in this user's data directory, which other machines cannot see.

Workers open the photos by the folder's absolute path, so the folder must be mounted at the same
path on every node (NFS, a mounted bucket); each node needs explorer and the model's weights
installed (`pip install 'explorer[cluster]'`), and a node whose weights differ is refused.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalog import FileEntry
from .store import Embedded, FileBatch

INSTALL_HINT = "pip install 'explorer[cluster]'"
LOCAL = "local"  # a Ray instance started on this machine for the one job, then stopped

log = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or the job failed on it."""


@dataclass
class RayCluster:
    """Where and how wide the embedding runs.

    `address`: LOCAL, "auto" (the cluster `ray start` began on this machine) or a cluster's
    address ("ray://host:10001", "host:6379"). `workers`: model processes (default: one per
    `cpus_per_worker` CPUs of the cluster). `gpus_per_worker` > 0 asks Ray for GPU workers, which
    then pick a GPU backend as a local run would.
    """

    address: str = LOCAL
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    backends: set[str] = field(default_factory=set)  # what the workers ran, as they reported it

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == LOCAL else f"the Ray cluster at {self.address}"
        ran = ", ".join(sorted(self.backends)) or "nothing"
        return f"{self.workers or '?'} Ray Data workers on {where}, running {ran}"

    def embed(
        self, model: str, weights_sha256: str, preprocessing: str, backend: str, folder: Path,
        todo: list[FileEntry], batch_size: int, cancelled: Callable[[], bool],
    ) -> Iterator[FileBatch]:
        """The files of `todo` embedded on the cluster, a batch at a time, in the order they
        finish. Stops without raising once `cancelled()` is true. Raises ClusterError."""
        ray = import_ray()
        self._connect(ray)
        try:
            if self.workers is None:
                self.workers = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_worker))
            by_path = {e.path: e for e in todo}
            batch_size = max(1, min(batch_size, math.ceil(len(todo) / self.workers)))  # every worker busy
            rows = ray.data.from_items([{"path": e.path} for e in todo],
                                       override_num_blocks=math.ceil(len(todo) / batch_size))
            embedded = rows.map_batches(
                _Embedder,
                fn_constructor_kwargs={
                    "model": model, "weights_sha256": weights_sha256, "preprocessing": preprocessing,
                    "backend": backend, "folder": str(folder),
                },
                batch_size=batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker or None,
            )
            try:
                for out in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                    self.backends.update(str(b) for b in out["backend"])
                    yield _file_batch(out, by_path)
                    if cancelled():
                        return
            except ray.exceptions.RayError as err:
                raise ClusterError(f"the Ray job failed: {_cause(err)}") from err
        finally:
            ray.shutdown()

    def _connect(self, ray) -> None:
        try:
            if self.address == LOCAL:
                # No dashboard; Ray opens its ports on every interface whatever the node address,
                # and a local instance refuses any caller without its token (Ray's default).
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                         logging_level=logging.ERROR, log_to_driver=False)
            else:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            hint = ("; a cluster with token authentication also needs RAY_AUTH_MODE=token (and its "
                    "token in RAY_AUTH_TOKEN or ~/.ray/auth_token)" if "RAY_AUTH_MODE" not in os.environ else "")
            raise ClusterError(f"cannot reach the Ray cluster at {self.address}: {err}{hint}") from err
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller's progress counts rows committed
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)


def import_ray():
    """The ray module, told not to report usage to its makers (read when Ray starts).
    Raises ClusterError when Ray is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ClusterError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from err
    return ray


class _Embedder:
    """One worker process: the model loaded once, then the local pipeline over each batch."""

    def __init__(self, model: str, weights_sha256: str, preprocessing: str, backend: str, folder: str):
        import platform

        from .backbones import load_model
        from .backends import threads

        self.model = load_model(model, backend=backend)
        node = platform.node()
        if self.model.weights_sha256 != weights_sha256:
            raise ClusterError(f"{node} has other weights for {model} (sha256 {self.model.weights_sha256[:12]}, "
                               f"the driver's {weights_sha256[:12]}): install the same packages on every node")
        if self.model.spec.preprocessing.describe() != preprocessing:
            raise ClusterError(f"{node} preprocesses {model} otherwise ({self.model.spec.preprocessing.describe()}, "
                               f"the driver: {preprocessing}): install the same explorer on every node")
        self.folder = Path(folder)
        self.decode_workers = max(2, threads())  # Ray gives each worker its share of the CPUs
        self.backend = f"{self.model.describe_backend()} on {node}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .embed import embed_batches

        paths = [str(p) for p in batch["path"]]
        out: dict[str, tuple] = {}  # path -> its row, put back in input order below
        for done in embed_batches(self.model, paths, lambda p: self.folder / p, batch_size=len(paths),
                                  decode_workers=self.decode_workers):
            for path, decoded, vector in zip(done.items, done.decoded, done.vectors):
                out[path] = (vector, decoded.width, decoded.height, decoded.thumbnail or b"", "")
            for path, reason in done.failures:
                out[path] = (np.zeros(self.model.spec.dim, np.float32), 0, 0, b"", reason)
        rows = [out[p] for p in paths]
        return {
            "path": np.array(paths, dtype=object),
            "vector": np.stack([r[0] for r in rows]).astype(np.float32),
            "width": np.array([r[1] for r in rows], np.int64),
            "height": np.array([r[2] for r in rows], np.int64),
            "thumbnail": np.array([r[3] for r in rows], dtype=object),
            "reason": np.array([r[4] for r in rows], dtype=object),
            "backend": np.array([self.backend] * len(rows), dtype=object),
        }


def _file_batch(out: dict[str, np.ndarray], by_path: dict[str, FileEntry]) -> FileBatch:
    embedded, skipped = [], []
    for path, vector, width, height, thumbnail, reason in zip(
        out["path"], out["vector"], out["width"], out["height"], out["thumbnail"], out["reason"],
    ):
        entry = by_path[str(path)]
        if reason:
            skipped.append((entry, str(reason)))
        else:
            embedded.append(Embedded(entry, np.asarray(vector, np.float32), int(width), int(height),
                                     bytes(thumbnail) or None))
    return FileBatch(embedded, skipped)


def _cause(err: BaseException) -> str:
    """The worker's own error, not Ray's wrapping of it (a page of traceback)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
