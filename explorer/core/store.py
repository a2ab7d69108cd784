"""The on-disk collection: one photo folder indexed with one model.

Layout under the per-user data directory (never inside the photo folder):

    collections/<folder-key>/folder.json          which folder this is, last model used
    collections/<folder-key>/thumbs.sqlite        JPEG thumbnails, shared by all models
    collections/<folder-key>/<model>/index.sqlite files, status, vector slots, shard list
    collections/<folder-key>/<model>/shard-NNNNNN.npy   append-only float32 vectors
    collections/<folder-key>/<model>/hnsw.bin + hnsw.json   the ANN index (see ann.py)

Crash safety: a shard is written to a temp file and renamed before the SQLite transaction that
references it commits. A shard no transaction references is an orphan of an interrupted batch and
is deleted on open; its images are simply embedded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from .catalog import FileEntry

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
_SHARD = re.compile(r"shard-(\d{6})\.npy$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- stable id, never reused: the ANN index's label
    path TEXT NOT NULL UNIQUE,             -- relative to the folder, POSIX separators
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'skipped')),
    reason TEXT,                           -- why it was skipped
    slot INTEGER,                          -- row of its vector across the shards
    width INTEGER,
    height INTEGER
);
CREATE TABLE IF NOT EXISTS shards (seq INTEGER PRIMARY KEY, start INTEGER NOT NULL, count INTEGER NOT NULL);
"""


class CollectionError(RuntimeError):
    """The collection cannot be used as asked (wrong model, newer format, ...)."""


def data_root() -> Path:
    """Per-user data directory; EXPLORER_DATA_DIR overrides it (tests, portable installs)."""
    override = os.environ.get("EXPLORER_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir("Explorer", False))


def folder_key(folder: Path) -> str:
    resolved = str(Path(folder).resolve())
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(resolved).name)[:40] or "root"
    return f"{slug}-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"


def folder_dir(folder: Path) -> Path:
    return data_root() / "collections" / folder_key(folder)


def temp_beside(path: Path) -> Path:
    """A temporary name next to `path` for an atomic replace, its own per process and thread:
    two writers sharing one name (two opens of a folder at once) would move each other's file."""
    return path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_json_atomic(path: Path, value: object) -> None:
    tmp = temp_beside(path)
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)


def read_folder_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder_dir(folder) / "folder.json").read_text())
    except (OSError, ValueError):
        return {}


def indexed_models(folder: Path) -> list[str]:
    base = folder_dir(folder)
    return sorted(p.parent.name for p in base.glob("*/index.sqlite")) if base.is_dir() else []


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
    return db


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Embedded:
    entry: FileEntry
    vector: np.ndarray
    width: int
    height: int
    thumbnail: bytes | None = None


class ThumbnailStore:
    """JPEG thumbnails keyed by relative path and fingerprint; shared by every model."""

    def __init__(self, path: Path):
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError as err:  # not a database, malformed: it is only a cache
            aside = _set_aside(path)
            log.warning("the thumbnail cache %s was damaged (%s): moved to %s; thumbnails are made "
                        "again from the photos", path, err, aside.name)
            self.db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = _connect(path)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS thumbs (path TEXT PRIMARY KEY, size INTEGER, "
                       "mtime_ns INTEGER, jpeg BLOB NOT NULL)")
            db.execute("SELECT 1 FROM thumbs LIMIT 1").fetchone()  # a damaged page shows here
        except BaseException:
            db.close()
            raise
        return db

    def put_many(self, items: Iterable[tuple[FileEntry, bytes]]) -> None:
        rows = [(e.path, e.size, e.mtime_ns, sqlite3.Binary(jpeg)) for e, jpeg in items]
        with _transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?, ?, ?)", rows)

    def get(self, path: str) -> bytes | None:
        row = self.db.execute("SELECT jpeg FROM thumbs WHERE path = ?", (path,)).fetchone()
        return bytes(row[0]) if row else None

    def has_current(self, entry: FileEntry) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM thumbs WHERE path = ? AND size = ? AND mtime_ns = ?",
            (entry.path, entry.size, entry.mtime_ns),
        ).fetchone()
        return row is not None

    def remove(self, paths: Iterable[str]) -> None:
        with _transaction(self.db):
            self.db.executemany("DELETE FROM thumbs WHERE path = ?", [(p,) for p in paths])

    def close(self) -> None:
        self.db.close()


def _set_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL files) out of the way, kept for a bug report."""
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    while aside.exists():  # damaged twice within a second: keep both
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.replace(f"{aside}{suffix}")
    return aside


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Collection:
    """The vectors and file records of one folder under one model."""

    def __init__(self, folder: Path, model: str, dim: int, model_meta: dict[str, str]):
        self.folder = Path(folder).resolve()
        self.model = model
        self.dir = folder_dir(self.folder) / model
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = _connect(self.dir / "index.sqlite")
        self.db.executescript(_SCHEMA)
        self.thumbnails = ThumbnailStore(self.dir.parent / "thumbs.sqlite")
        self._check_meta(dim, model_meta)
        self._delete_orphan_shards()
        manifest = read_folder_manifest(self.folder) | {"folder": str(self.folder), "format": FORMAT_VERSION}
        manifest["last_model"] = model
        write_json_atomic(self.dir.parent / "folder.json", manifest)

    @classmethod
    def open_existing(cls, folder: Path, model: str) -> "Collection":
        db_path = folder_dir(folder) / model / "index.sqlite"
        if not db_path.is_file():
            raise CollectionError(f"{folder} has no collection for model {model!r}")
        db = sqlite3.connect(db_path)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        db.close()
        return cls(folder, model, int(meta["dim"]), {})

    # --- metadata ---------------------------------------------------------------------------

    def _check_meta(self, dim: int, model_meta: dict[str, str]) -> None:
        meta = self.meta()
        if not meta:
            values = {"format": str(FORMAT_VERSION), "model": self.model, "dim": str(dim),
                      "generation": "0", "created": time.strftime("%Y-%m-%dT%H:%M:%S")} | model_meta
            with _transaction(self.db):
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
            return
        if int(meta["format"]) > FORMAT_VERSION:
            raise CollectionError("this collection was written by a newer version of Explorer")
        if meta["model"] != self.model or int(meta["dim"]) != dim:
            raise CollectionError(f"collection holds {meta['model']} vectors, not {self.model}")
        for key, value in model_meta.items():
            if key in meta and meta[key] != value:
                raise CollectionError(
                    f"the {self.model} weights changed ({key} {meta[key][:12]} -> {value[:12]}); "
                    f"vectors of two weights are never mixed: delete {self.dir} to re-index"
                )

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def dim(self) -> int:
        return int(self.meta()["dim"])

    @property
    def generation(self) -> int:
        """Bumped by every committed change; the ANN index records the one it matches."""
        return int(self.meta()["generation"])

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # --- files ------------------------------------------------------------------------------

    def known(self) -> dict[str, tuple[int, int]]:
        rows = self.db.execute("SELECT path, size, mtime_ns FROM files")
        return {path: (size, mtime) for path, size, mtime in rows}

    def ids_of(self, paths: Iterable[str]) -> dict[str, int]:
        found = {}
        for path in paths:
            row = self.db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
            if row:
                found[path] = row[0]
        return found

    def remove(self, paths: list[str]) -> list[int]:
        """Forget files that are gone; returns their ids."""
        if not paths:
            return []
        ids = list(self.ids_of(paths).values())
        with _transaction(self.db):
            self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            self._bump_generation()
        self.thumbnails.remove(paths)
        return ids

    def add_batch(self, embedded: list[Embedded], skipped: list[tuple[FileEntry, str]]) -> list[int]:
        """Store one batch durably: shard first, then one transaction. Returns the new ids."""
        ids: list[int] = []
        shard_path = None
        if embedded:
            seq = self._next_shard_seq()
            start = self._next_slot()
            shard_path = self.dir / f"shard-{seq:06d}.npy"
            _save_npy_atomic(shard_path, np.stack([e.vector for e in embedded]).astype(np.float32))
        try:
            with _transaction(self.db):
                if embedded:
                    self.db.execute("INSERT INTO shards VALUES (?, ?, ?)", (seq, start, len(embedded)))
                for offset, e in enumerate(embedded):
                    ids.append(self._upsert(e.entry, "ok", None, start + offset, e.width, e.height))
                for entry, reason in skipped:
                    self._upsert(entry, "skipped", reason, None, None, None)
                self._bump_generation()
        except BaseException:
            if shard_path:
                shard_path.unlink(missing_ok=True)
            raise
        thumbs = [(e.entry, e.thumbnail) for e in embedded if e.thumbnail]
        if thumbs:
            self.thumbnails.put_many(thumbs)
        return ids

    def _upsert(self, e: FileEntry, status: str, reason: str | None, slot: int | None,
                width: int | None, height: int | None) -> int:
        row = self.db.execute(
            "INSERT INTO files (path, size, mtime_ns, status, reason, slot, width, height) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET size=excluded.size, "
            "mtime_ns=excluded.mtime_ns, status=excluded.status, reason=excluded.reason, "
            "slot=excluded.slot, width=excluded.width, height=excluded.height RETURNING id",
            (e.path, e.size, e.mtime_ns, status, reason, slot, width, height),
        ).fetchone()
        return row[0]

    def skipped(self) -> list[SkippedFile]:
        rows = self.db.execute("SELECT path, reason FROM files WHERE status = 'skipped' ORDER BY path")
        return [SkippedFile(p, r) for p, r in rows]

    def count(self, status: str = "ok") -> int:
        return self.db.execute("SELECT COUNT(*) FROM files WHERE status = ?", (status,)).fetchone()[0]

    # --- vectors ----------------------------------------------------------------------------

    def _shards(self) -> list[tuple[int, int, int]]:
        return self.db.execute("SELECT seq, start, count FROM shards ORDER BY start").fetchall()

    def _next_slot(self) -> int:
        row = self.db.execute("SELECT MAX(start + count) FROM shards").fetchone()
        return row[0] or 0

    def _next_shard_seq(self) -> int:
        on_disk = [int(m.group(1)) for p in self.dir.iterdir() if (m := _SHARD.match(p.name))]
        in_db = self.db.execute("SELECT MAX(seq) FROM shards").fetchone()[0] or 0
        return max([in_db, *on_disk]) + 1

    def _delete_orphan_shards(self) -> None:
        referenced = {seq for seq, _, _ in self._shards()}
        for path in self.dir.iterdir():
            match = _SHARD.match(path.name)
            if (match and int(match.group(1)) not in referenced) or path.name.endswith(".npy.tmp"):
                path.unlink(missing_ok=True)

    def live(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(ids, relative paths, vectors) of every embedded file, ordered by id."""
        rows = self.db.execute("SELECT id, path, slot FROM files WHERE status = 'ok' ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        slots = np.array([r[2] for r in rows], dtype=np.int64)
        return ids, [r[1] for r in rows], self._gather(slots)

    def _gather(self, slots: np.ndarray) -> np.ndarray:
        out = np.empty((len(slots), self.dim), dtype=np.float32)
        for seq, start, count in self._shards():
            mask = (slots >= start) & (slots < start + count)
            if not mask.any():
                continue
            path, wanted = self.dir / f"shard-{seq:06d}.npy", slots[mask] - start
            rows = np.flatnonzero(mask)
            if rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(wanted) == 1):
                _read_rows(path, int(wanted[0]), out[rows[0]:rows[-1] + 1])  # the usual case
            else:
                out[mask] = np.load(path, mmap_mode="r")[wanted]
        return out

    def compact(self) -> None:
        """Merge small shards (and drop dead vectors when they pile up) into one new shard.

        The biggest shard stays untouched unless over a fifth of all slots are dead, so adding a
        few photos to a big collection never rewrites its whole vector store.
        """
        shards = self._shards()
        if len(shards) <= 1 and self._dead_fraction() == 0:
            return
        biggest = max(shards, key=lambda s: s[2]) if shards else None
        rewrite_all = self._dead_fraction() > 0.2 or len(shards) <= 1
        keep = [] if rewrite_all or biggest is None else [biggest]
        merge = [s for s in shards if s not in keep]
        if len(merge) <= 1 and not rewrite_all:
            return
        lo_hi = [(start, start + count) for _, start, count in merge]
        rows = self.db.execute("SELECT id, slot FROM files WHERE status = 'ok' ORDER BY id").fetchall()
        moved = [(i, s) for i, s in rows if any(lo <= s < hi for lo, hi in lo_hi)]
        seq, start = self._next_shard_seq(), self._next_slot()
        vectors = self._gather(np.array([s for _, s in moved], dtype=np.int64))
        path = self.dir / f"shard-{seq:06d}.npy"
        _save_npy_atomic(path, vectors)
        with _transaction(self.db):
            self.db.executemany("DELETE FROM shards WHERE seq = ?", [(s[0],) for s in merge])
            if moved:
                self.db.execute("INSERT INTO shards VALUES (?, ?, ?)", (seq, start, len(moved)))
            self.db.executemany("UPDATE files SET slot = ? WHERE id = ?",
                                [(start + k, i) for k, (i, _) in enumerate(moved)])
        if not moved:
            path.unlink(missing_ok=True)
        self._delete_orphan_shards()

    def _dead_fraction(self) -> float:
        """Share of stored vectors whose file was since removed or re-embedded."""
        stored = sum(count for _, _, count in self._shards())
        return (stored - self.count("ok")) / stored if stored else 0.0

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())

    def close(self) -> None:
        self.db.close()
        self.thumbnails.close()


def _read_rows(path: Path, first: int, out: np.ndarray) -> None:
    """Read len(out) consecutive rows of a float32 .npy file straight into `out`: one read call
    instead of a page fault per 4 KiB of a memory map (seconds for 0.5 GB on some machines)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if fortran_order or dtype != out.dtype or shape[1:] != out.shape[1:] or first + len(out) > shape[0]:
            raise CollectionError(f"{path.name} does not hold the expected vectors")
        f.seek(first * out.strides[0], os.SEEK_CUR)
        if f.readinto(memoryview(out).cast("B")) != out.nbytes:
            raise CollectionError(f"{path.name} is truncated")


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
