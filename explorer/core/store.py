"""The on-disk collection: one photo folder indexed with one model.

Layout under the per-user data directory (never inside the photo folder):

    collections/<folder-key>/folder.json          which folder this is, last model used
    collections/<folder-key>/thumbs.sqlite        JPEG thumbnails, shared by all models
    collections/<folder-key>/<model>/index.sqlite files, status, vector slots, shard list
    collections/<folder-key>/<model>/shard-NNNNNN.npy   append-only float32 vectors
    collections/<folder-key>/<model>/shard-NNNNNN.files.json   which file each row embeds: lets
                                                  the vectors be reused if index.sqlite is lost
    collections/<folder-key>/<model>/hnsw.bin + hnsw.json   the ANN index (see ann.py)
    collections/<folder-key>/saved/<model>/       what the user made (named queries): never derived,
                                                  so no repair or rebuild of <model>/ touches it

Crash safety: a shard is written to a temp file and renamed before the SQLite transaction that
references it commits. A shard no transaction references is an orphan of an interrupted batch and
is deleted on open; its images are simply embedded again.

Damage: every file is checked where it is opened, cheaply (SQLite's quick_check; each shard's
header, shape and size against the rows index.sqlite records; stored vectors are unit length,
checked as they are read). What is found is a `Damage`; a collection opened with REPAIR fixes it
from the photos (a shard's images are dropped from the index, so the indexer embeds them again;
a damaged index.sqlite is moved aside and the collection rebuilt), REFUSE raises CollectionDamaged
(a command that cannot re-embed says what to run), REPORT only lists it (`explorer check`).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs

from .catalog import FileEntry

log = logging.getLogger(__name__)
# 2: named queries moved out of the model folder into saved/<model>/; each shard names its files
# (format 1 is migrated).
FORMAT_VERSION = 2
_SHARD = re.compile(r"shard-(\d{6})\.npy$")
_SHARD_FILES = re.compile(r"shard-(\d{6})\.files\.json$")

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
-- A shard's size and mtime when its vectors were last known good (written, or read and checked):
-- while they match, opening trusts it without checking every vector again.
CREATE TABLE IF NOT EXISTS verified (seq INTEGER PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL);
"""


class CollectionError(RuntimeError):
    """The collection cannot be used as asked (wrong model, newer format, ...)."""


@dataclass(frozen=True)
class Damage:
    """One damaged collection file: what is wrong with it, and what repairing it does."""

    path: Path
    why: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.path} is damaged ({self.why}); repairing it: {self.remedy}"

    def repaired(self) -> str:
        return f"repaired {self.path}: it was damaged ({self.why}); {self.remedy}"


class CollectionDamaged(CollectionError):
    """A collection file is damaged in a way only re-embedding photos repairs."""

    def __init__(self, folder: Path, damage: Damage):
        super().__init__(f"{damage.path} is damaged ({damage.why}); `explorer index {folder}` repairs it")
        self.damage = damage


class StorageError(CollectionError):
    """The data directory cannot be written or read: full, read-only, vanished, not allowed."""


# (what happened, what the user does about it) by errno and by SQLite's primary result code
_FULL = ("no space left on device", "free space and run again")
_READ_ONLY = ("the data directory is read-only", "make it writable and run again")
_DENIED = ("permission denied", "check the permissions of that folder and run again")
_VANISHED = ("the data directory vanished", "check that its disk is mounted and run again")
_TOO_BIG = ("a file reached this system's size limit", "raise the limit (ulimit -f) and run again")
_ERRNO_PROBLEMS = {errno.ENOSPC: _FULL, errno.EDQUOT: _FULL, errno.EFBIG: _TOO_BIG, errno.EROFS: _READ_ONLY,
                   errno.EACCES: _DENIED, errno.EPERM: _DENIED, errno.ENOENT: _VANISHED}
_SQLITE_PROBLEMS = {13: _FULL, 8: _READ_ONLY, 14: _DENIED, 23: _DENIED,  # FULL READONLY CANTOPEN AUTH
                    5: ("the collection is locked by another program", "close it and run again")}


def storage_problem(err: BaseException, directory: Path) -> tuple[str, str] | None:
    """(what happened, what to do) when `err` is the data directory failing, else None."""
    if isinstance(err, sqlite3.Error) and not (isinstance(err, sqlite3.DatabaseError) and is_damage(err)):
        code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
        if code == 10:  # SQLITE_IOERR: in WAL mode a full disk often shows as this
            return _FULL if _free_bytes(directory) < 1 << 20 else ("disk I/O error", "check the disk and run again")
        return _SQLITE_PROBLEMS.get(code)
    if isinstance(err, OSError):  # numpy's short write ("N requested and M written") has no errno
        problem = _ERRNO_PROBLEMS.get(err.errno) if err.errno is not None else None
        return problem or (_FULL if err.errno in (None, errno.EIO) and _free_bytes(directory) < 1 << 20 else None)
    return None


def _free_bytes(directory: Path) -> int:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return 0


def storage_error(err: OSError | sqlite3.Error, doing: str, folder: Path, directory: Path,
                  kept: Callable[[], int] | None = None) -> StorageError | None:
    """A StorageError of one line for the data directory failing (full, read-only, ...), e.g.
    'no space left on device while saving the collection of F in D; free space and run again:
    the N images done so far are kept'; None when `err` is something else."""
    problem = storage_problem(err, directory)
    if problem is None:
        return None
    what, fix = problem
    message = f"{what} while {doing} the collection of {folder} in {directory}; {fix}"
    if kept is not None:
        try:
            message += f": the {kept()} images done so far are kept"
        except (OSError, sqlite3.Error):
            pass
    return StorageError(message)


# What a Collection does with damage it finds on opening: see the module's docstring.
REPAIR, REFUSE, REPORT = "repair", "refuse", "report"
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB; I/O, full or locked are not damage


def is_damage(err: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means a damaged file (not a full disk, a lock, a permission)."""
    return getattr(err, "sqlite_errorcode", None) in _DAMAGE_CODES or type(err) is sqlite3.DatabaseError


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
    try:
        tmp.write_text(json.dumps(value, indent=2))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def saved_dir(folder: Path, model: str) -> Path:
    """Where what the user made for `folder` under `model` lives, apart from derived data."""
    return folder_dir(folder) / "saved" / model


def read_folder_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder_dir(folder) / "folder.json").read_text())
    except (OSError, ValueError):
        return {}


def indexed_models(folder: Path) -> list[str]:
    base = folder_dir(folder)
    # Hidden folders are imports being built (exchange.py), not representations yet.
    return sorted(p.parent.name for p in base.glob("*/index.sqlite")
                  if not p.parent.name.startswith(".")) if base.is_dir() else []


def discard_derived(folder: Path, model: str) -> None:
    """Delete everything of `folder`'s collection under `model` that the photos can make again
    (vectors, index, graph, map) and the shared thumbnails: for a rebuild the checks cannot
    motivate. What the user made (saved_dir) is kept. The collection must not be open."""
    base = folder_dir(folder)
    shutil.rmtree(base / model, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        (base / f"thumbs.sqlite{suffix}").unlink(missing_ok=True)
    log.info("collection of %s under %s discarded, to be rebuilt from the photos", folder, model)


def _reads_index(method):
    """A damaged page met while reading index.sqlite is a CollectionDamaged naming the file."""
    @functools.wraps(method)
    def reading(self: "Collection", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise
            damage = Damage(self.dir / "index.sqlite", str(err), "the collection is rebuilt from the photos")
            raise CollectionDamaged(self.folder, damage) from None
    return reading


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
    return db


def _open_checked(path: Path, schema: str, thorough: bool) -> sqlite3.Connection:
    """A connection to a database whose schema reads; `thorough`: that also passed SQLite's
    quick_check, which reads every page (18 ms for index.sqlite at 100k files, but 0.5 s for
    their 1.6 GB of thumbnails). Raises sqlite3.DatabaseError (is_damage) for a damaged one."""
    db = _connect(path)
    try:
        db.executescript(schema)
        problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")] if thorough else ["ok"]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems).replace("\n", " "))
    except BaseException:
        db.close()
        raise
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


class FileBatch(NamedTuple):
    """What one add_batch stores: the files embedded, and the files skipped with their reasons."""

    embedded: list[Embedded]
    skipped: list[tuple[FileEntry, str]]


class ThumbnailStore:
    """JPEG thumbnails keyed by relative path and fingerprint; shared by every model.

    Only a cache: a damaged one is moved aside (kept for a bug report) and started anew, even
    when the collection is opened for reading. On open only its schema is read (quick_check
    would read every thumbnail): damage found later makes a read miss and a write start anew.
    With `check` (a check that changes nothing) every page is read, and damage is only reported
    in `damage` while an empty store in memory stands in."""

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS thumbs (path TEXT PRIMARY KEY, size INTEGER, "
               "mtime_ns INTEGER, jpeg BLOB NOT NULL);"
               "SELECT 1 FROM thumbs LIMIT 1;")  # the root page: a truncated file shows here

    def __init__(self, path: Path, check: bool = False):
        self.path = path
        self.damage: list[Damage] = []
        try:
            self.db = _open_checked(path, self._SCHEMA, thorough=check)
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise
            if check:
                self.damage.append(Damage(path, str(err), "thumbnails are made again from the photos"))
                self.db = _open_checked(Path(":memory:"), self._SCHEMA, thorough=False)
                return
            self._start_anew(err)

    def _start_anew(self, err: sqlite3.DatabaseError) -> None:
        aside = _set_aside(self.path)
        self.damage.append(Damage(self.path, str(err), f"moved to {aside.name}; thumbnails are made "
                                                       "again from the photos"))
        log.warning("%s", self.damage[-1].repaired())
        self.db = _open_checked(self.path, self._SCHEMA, thorough=False)

    def put_many(self, items: Iterable[tuple[FileEntry, bytes]]) -> None:
        rows = [(e.path, e.size, e.mtime_ns, sqlite3.Binary(jpeg)) for e, jpeg in items]
        try:
            self._put(rows)
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise
            self.db.close()
            self._start_anew(err)
            self._put(rows)

    def _put(self, rows: list[tuple]) -> None:
        with _transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?, ?, ?)", rows)

    def get(self, path: str) -> bytes | None:
        try:
            row = self.db.execute("SELECT jpeg FROM thumbs WHERE path = ?", (path,)).fetchone()
        except sqlite3.DatabaseError as err:  # a damaged page: the tile shows blank until re-indexed
            if not is_damage(err):
                raise
            log.warning("thumbnail of %s unreadable: %s is damaged (%s)", path, self.path, err)
            return None
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
    """The vectors and file records of one folder under one model.

    `on_damage` (REPAIR, REFUSE, REPORT) says what to do with damage found while opening; what
    was found is in `damage`."""

    def __init__(self, folder: Path, model: str, dim: int, model_meta: dict[str, str],
                 on_damage: str = REPAIR):
        self.folder = Path(folder).resolve()
        self.model = model
        self.dir = folder_dir(self.folder) / model
        self.saved_dir = saved_dir(self.folder, model)
        self.on_damage = on_damage
        self.damage: list[Damage] = []
        self._bad_shards: set[int] = set()  # reported, not repaired (REPORT)
        self._lost_index: Damage | None = None  # a damaged index.sqlite, set aside (REPAIR)
        manifest = read_folder_manifest(self.folder)
        if int(manifest.get("format", 0)) > FORMAT_VERSION:
            raise CollectionError(f"the collection of {self.folder} was written by a newer version of "
                                  f"Explorer (format {manifest['format']}); update Explorer to open it")
        self.thumbnails: ThumbnailStore | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.db = self._open_index()
        except (OSError, sqlite3.Error) as err:
            if storage := storage_error(err, "opening", self.folder, self.dir.parent):
                raise storage from err
            raise
        try:
            self.thumbnails = ThumbnailStore(self.dir.parent / "thumbs.sqlite", check=on_damage == REPORT)
            self.damage += self.thumbnails.damage
            self._check_meta(dim, model_meta)
            if self._lost_index is not None:
                self._repaired_index(self._adopt_shards())
            self._delete_orphan_shards()
            self._check_shards()
            if on_damage != REPORT:
                manifest |= {"folder": str(self.folder), "format": FORMAT_VERSION, "last_model": model}
                write_json_atomic(self.dir.parent / "folder.json", manifest)
        except BaseException as err:
            self.close()
            if isinstance(err, (OSError, sqlite3.Error)) and (
                    storage := storage_error(err, "opening", self.folder, self.dir.parent)):
                raise storage from err
            raise

    @classmethod
    def open_existing(cls, folder: Path, model: str, on_damage: str = REFUSE) -> "Collection":
        db_path = folder_dir(folder) / model / "index.sqlite"
        if not db_path.is_file():
            raise CollectionError(f"{folder} has no collection for model {model!r}")
        try:
            db = sqlite3.connect(db_path)
            try:
                dim = int(dict(db.execute("SELECT key, value FROM meta").fetchall())["dim"])
            finally:
                db.close()
        except (sqlite3.Error, KeyError, ValueError):  # damaged (random bytes may read as empty)
            from .backbones import get_spec  # only here: the spec knows the dimension the file lost

            dim = get_spec(model).dim  # the damage itself is found, and dealt with, as it opens
        return cls(folder, model, dim, {}, on_damage)

    def _open_index(self) -> sqlite3.Connection:
        path = self.dir / "index.sqlite"
        try:
            if path.is_file() and path.stat().st_size == 0:  # SQLite would take it for a new one
                raise sqlite3.DatabaseError("empty file")
            # Reading for a search, only the schema: a damaged page shows (as CollectionDamaged)
            # when the rows are read. Indexing and checking read every page first.
            return _open_checked(path, _SCHEMA, thorough=self.on_damage != REFUSE)
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise
            damage = Damage(path, str(err), "the collection is rebuilt from the photos")
            if self.on_damage != REPAIR:
                self.damage.append(damage)
                raise CollectionDamaged(self.folder, damage) from None
            aside = _set_aside(path)
            self._clear_caches()
            self._lost_index = Damage(path, damage.why, f"moved to {aside.name}; {damage.remedy}")
            return _open_checked(path, _SCHEMA, thorough=False)

    def _clear_caches(self) -> None:
        """Delete the graph and the map a lost index.sqlite described (the shards wait to be
        adopted), keeping damaged files for a bug report and moving out anything the user made
        (a format-1 folder's queries)."""
        self._move_saved()
        for path in self.dir.iterdir():
            if path.is_file() and ".damaged-" not in path.name and not _SHARD.match(path.name) \
                    and not _SHARD_FILES.match(path.name):
                path.unlink()

    def _adopt_shards(self) -> int:
        """Take the intact shards of a lost index.sqlite into the new one, by the files each
        names (the newest shard wins for a file embedded twice): only what no intact shard holds
        is embedded again, and a file changed since is simply re-embedded by the next diff.
        Returns the number of images adopted."""
        dim, adopted = self.dim, {}
        for seq in sorted(int(m.group(1)) for p in self.dir.iterdir() if (m := _SHARD.match(p.name))):
            try:
                rows = json.loads(self._shard_files_path(seq).read_text())["rows"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # no sidecar (or a damaged one): this shard cannot be told apart
            if _shard_problem(self._shard_path(seq), len(rows), dim) or not rows:
                continue
            vectors = np.empty((len(rows), dim), np.float32)
            _read_rows(self._shard_path(seq), 0, vectors)
            if _not_unit(vectors):
                continue
            start = self._next_slot()
            with _transaction(self.db):
                self.db.execute("INSERT INTO shards VALUES (?, ?, ?)", (seq, start, len(rows)))
                self._record_good(seq)
                for offset, row in enumerate(rows):
                    if row is not None:
                        path, size, mtime_ns, width, height = row
                        entry = FileEntry(path, size, mtime_ns)
                        adopted[path] = self._upsert(entry, "ok", None, start + offset, width, height)
                self._bump_generation()
        return len(adopted)

    def _move_saved(self) -> None:
        old_queries = self.dir / "queries.json"
        if old_queries.is_file() and not (self.saved_dir / "queries.json").exists():
            self.saved_dir.mkdir(parents=True, exist_ok=True)
            os.replace(old_queries, self.saved_dir / "queries.json")

    def _repaired_index(self, adopted: int) -> None:
        lost = self._lost_index
        assert lost is not None, "called only after the index was set aside"
        reused = f", reusing the vectors of {adopted} images its intact shards hold" if adopted else ""
        self._repaired(Damage(lost.path, lost.why, lost.remedy + reused))

    def _repaired(self, damage: Damage) -> None:
        self.damage.append(damage)
        log.warning("%s", damage.repaired())

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
            raise CollectionError(f"the {self.model} collection of {self.folder} was written by a newer "
                                  f"version of Explorer (format {meta['format']}); update Explorer to open it")
        if int(meta["format"]) < FORMAT_VERSION and self.on_damage != REPORT:
            self._migrate(int(meta["format"]))
        if meta["model"] != self.model or int(meta["dim"]) != dim:
            raise CollectionError(f"collection holds {meta['model']} vectors, not {self.model}")
        for key, value in model_meta.items():
            if key in meta and meta[key] != value:
                raise CollectionError(
                    f"the {self.model} weights changed ({key} {meta[key][:12]} -> {value[:12]}); "
                    f"vectors of two weights are never mixed: delete {self.dir} to re-index"
                )
        missing = {k: v for k, v in model_meta.items() if k not in meta}
        if missing:  # opened for reading after a rebuild: the first index run records the weights
            with _transaction(self.db):
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", missing.items())

    def _migrate(self, old: int) -> None:
        """Bring an older collection up to FORMAT_VERSION in place."""
        if old < 2:  # format 1 kept the named queries inside the (derived) model folder
            self._move_saved()
            for seq, start, count in self._shards():  # and its shards named no files
                self._write_shard_files(seq, self._files_in_slots(start, count))
        with _transaction(self.db):
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))
        log.info("collection %s migrated from format %d to %d", self.dir, old, FORMAT_VERSION)

    @_reads_index
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

    @_reads_index
    def known(self) -> dict[str, tuple[int, int]]:
        rows = self.db.execute("SELECT path, size, mtime_ns FROM files")
        return {path: (size, mtime) for path, size, mtime in rows}

    @_reads_index
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
        assert self.thumbnails is not None, "opened in __init__"
        self.thumbnails.remove(paths)
        return ids

    def add_batch(self, embedded: list[Embedded], skipped: list[tuple[FileEntry, str]]) -> list[int]:
        """Store one batch durably: shard first, then one transaction. Returns the new ids."""
        ids: list[int] = []
        shard_path = None
        if embedded:
            seq = self._next_shard_seq()
            start = self._next_slot()
            shard_path = self._shard_path(seq)
            _save_npy_atomic(shard_path, np.stack([e.vector for e in embedded]).astype(np.float32))
            self._write_shard_files(seq, [[e.entry.path, e.entry.size, e.entry.mtime_ns, e.width, e.height]
                                          for e in embedded])
        try:
            with _transaction(self.db):
                if embedded:
                    self.db.execute("INSERT INTO shards VALUES (?, ?, ?)", (seq, start, len(embedded)))
                    self._record_good(seq)
                for offset, e in enumerate(embedded):
                    ids.append(self._upsert(e.entry, "ok", None, start + offset, e.width, e.height))
                for entry, reason in skipped:
                    self._upsert(entry, "skipped", reason, None, None, None)
                self._bump_generation()
        except BaseException:
            if shard_path:
                shard_path.unlink(missing_ok=True)
                self._shard_files_path(seq).unlink(missing_ok=True)
            raise
        thumbs = [(e.entry, e.thumbnail) for e in embedded if e.thumbnail]
        if thumbs:
            assert self.thumbnails is not None, "opened in __init__"
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

    @_reads_index
    def skipped(self) -> list[SkippedFile]:
        rows = self.db.execute("SELECT path, reason FROM files WHERE status = 'skipped' ORDER BY path")
        return [SkippedFile(p, r) for p, r in rows]

    @_reads_index
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

    def _shard_path(self, seq: int) -> Path:
        return self.dir / f"shard-{seq:06d}.npy"

    def _shard_files_path(self, seq: int) -> Path:
        return self.dir / f"shard-{seq:06d}.files.json"

    def _write_shard_files(self, seq: int, rows: list[list | None]) -> None:
        """Which file each row of shard `seq` embeds ([path, size, mtime_ns, width, height], None
        for a dead row), written before the transaction that references the shard."""
        write_json_atomic(self._shard_files_path(seq), {"rows": rows})

    def _files_in_slots(self, start: int, count: int) -> list[list | None]:
        rows: list[list | None] = [None] * count
        for slot, *row in self.db.execute("SELECT slot, path, size, mtime_ns, width, height FROM files "
                                          "WHERE status = 'ok' AND slot >= ? AND slot < ?", (start, start + count)):
            rows[slot - start] = row
        return rows

    def _check_shards(self) -> None:
        """Each shard's header, shape and size against what index.sqlite records: a stat and a
        128-byte read per shard."""
        dim = self.dim
        for seq, start, count in self._shards():
            why = _shard_problem(self._shard_path(seq), count, dim)
            if why:
                self._shard_damaged(seq, start, count, why)

    def verify_vectors(self, chunk_rows: int = 8192) -> None:
        """Read every stored vector once and check that it is unit length, as every vector
        written is: what a header cannot show (bytes overwritten in place, even with the mtime
        put back). Costs one read of the shards (see bench/bench_open.py); damage is dealt with
        as `on_damage` says; with REPAIR the good shards are noted as known good."""
        dim = self.dim
        for seq, start, count in self._shards():
            if seq in self._bad_shards:
                continue
            buffer = np.empty((min(chunk_rows, count), dim), np.float32)
            bad = 0
            try:
                for first in range(0, count, chunk_rows):
                    block = buffer[:min(chunk_rows, count - first)]
                    _read_rows(self._shard_path(seq), first, block)
                    bad += _not_unit(block)
            except (OSError, CollectionError) as err:
                if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
                    raise
                self._shard_damaged(seq, start, count, str(err))
                continue
            if bad:
                self._shard_damaged(seq, start, count, f"{bad} of its {count} vectors not of unit length")
            elif self.on_damage == REPAIR:
                with _transaction(self.db):
                    self._record_good(seq)

    def _record_good(self, seq: int) -> None:
        """Note shard `seq`'s size and mtime as those of known-good vectors (in a transaction)."""
        st = self._shard_path(seq).stat()
        self.db.execute("INSERT OR REPLACE INTO verified VALUES (?, ?, ?)", (seq, st.st_size, st.st_mtime_ns))

    def _known_good(self) -> set[int]:
        """The shards unchanged since their vectors were last known good: a stat each."""
        good = set()
        for seq, size, mtime_ns in self.db.execute("SELECT seq, size, mtime_ns FROM verified"):
            try:
                st = self._shard_path(seq).stat()
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
                good.add(seq)
        return good

    def _shard_damaged(self, seq: int, start: int, count: int, why: str) -> Damage:
        """Deal with one damaged shard: its images are dropped from the index (REPAIR), so that
        the next index run embeds them again from their photos."""
        images = self.db.execute("SELECT COUNT(*) FROM files WHERE status = 'ok' AND slot >= ? AND slot < ?",
                                 (start, start + count)).fetchone()[0]
        damage = Damage(self._shard_path(seq), why, f"its {images} images are embedded again")
        if self.on_damage == REFUSE:
            raise CollectionDamaged(self.folder, damage)
        if self.on_damage == REPORT:
            self._bad_shards.add(seq)
            self.damage.append(damage)
            return damage
        with _transaction(self.db):
            self.db.execute("DELETE FROM files WHERE status = 'ok' AND slot >= ? AND slot < ?",
                            (start, start + count))
            self.db.execute("DELETE FROM shards WHERE seq = ?", (seq,))
            self.db.execute("DELETE FROM verified WHERE seq = ?", (seq,))
            self._bump_generation()
        self._shard_path(seq).unlink(missing_ok=True)
        self._shard_files_path(seq).unlink(missing_ok=True)
        self._repaired(damage)
        return damage

    def _delete_orphan_shards(self) -> None:
        referenced = {seq for seq, _, _ in self._shards()}
        for path in self.dir.iterdir():
            match = _SHARD.match(path.name) or _SHARD_FILES.match(path.name)
            if (match and int(match.group(1)) not in referenced) or path.name.endswith(".npy.tmp"):
                path.unlink(missing_ok=True)

    @_reads_index
    def live(self, check: bool = True) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(ids, relative paths, vectors) of every embedded file, ordered by id. With `check`
        every vector read from a shard changed since it was last known good is checked to be
        unit length (_not_unit): a damaged shard is dealt with as `on_damage` says (REPAIR
        drops its images, to be embedded again)."""
        while True:
            ids, paths, slots = self.live_files()
            try:
                return ids, paths, self._gather(slots, check)
            except _DamagedShard as bad:
                damage = self._shard_damaged(*bad.args)
                if self.on_damage != REPAIR:
                    raise CollectionDamaged(self.folder, damage) from None

    @_reads_index
    def live_files(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(ids, relative paths, vector slots) of every embedded file, ordered by id: what
        live() reads but the vectors (~1 s at 1M files)."""
        rows = self.db.execute("SELECT id, path, slot FROM files WHERE status = 'ok' ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        slots = np.fromiter((r[2] for r in rows), np.int64, len(rows))
        return ids, [r[1] for r in rows], slots

    def vectors_at(self, slots: np.ndarray) -> np.ndarray:
        """The stored vectors in `slots` (of live_files), read as they are: for shards
        `all_known_good` says were checked."""
        try:
            return self._gather(np.asarray(slots, np.int64))
        except _DamagedShard as bad:  # changed under us since the check: what live() repairs
            raise CollectionDamaged(self.folder, Damage(self._shard_path(bad.args[0]), bad.args[3],
                                                        "its images are embedded again")) from None

    def all_known_good(self) -> bool:
        """Whether every shard is unchanged since its vectors were last checked (a stat each)."""
        return {seq for seq, _, _ in self._shards()} <= self._known_good()

    def _gather(self, slots: np.ndarray, check: bool = False) -> np.ndarray:
        out = np.empty((len(slots), self.dim), dtype=np.float32)
        trusted = self._known_good() if check else set()
        for seq, start, count in self._shards():
            mask = (slots >= start) & (slots < start + count)
            if not mask.any():
                continue
            path, wanted = self._shard_path(seq), slots[mask] - start
            rows = np.flatnonzero(mask)
            try:
                if rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(wanted) == 1):
                    block = out[rows[0]:rows[-1] + 1]  # the usual case: one read
                    _read_rows(path, int(wanted[0]), block)
                else:
                    block = out[mask] = np.load(path, mmap_mode="r")[wanted]
            except (FileNotFoundError, ValueError, CollectionError) as err:  # changed since the open
                raise _DamagedShard(seq, start, count, str(err)) from None
            if check and seq not in trusted and (bad := _not_unit(block)):
                raise _DamagedShard(seq, start, count, f"{bad} of its {count} vectors not of unit length")
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
        path = self._shard_path(seq)
        _save_npy_atomic(path, vectors)
        files = {i: row for i, *row in self.db.execute(
            "SELECT id, path, size, mtime_ns, width, height FROM files WHERE status = 'ok'")}
        self._write_shard_files(seq, [files[i] for i, _ in moved])
        with _transaction(self.db):
            self.db.executemany("DELETE FROM shards WHERE seq = ?", [(s[0],) for s in merge])
            if moved:
                self.db.execute("INSERT INTO shards VALUES (?, ?, ?)", (seq, start, len(moved)))
                self._record_good(seq)
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
        if self.thumbnails is not None:
            self.thumbnails.close()


class _DamagedShard(Exception):
    """(seq, start, count, why) of a shard whose vectors turned out damaged as they were read."""


def _not_unit(vectors: np.ndarray) -> int:
    """How many rows are not unit length (zero rows are allowed: an all-zero feature stays zero).
    16 ms at 100k x 1280 (np.vecdot; einsum takes 25), a tenth of opening them."""
    with np.errstate(all="ignore"):  # random bytes overflow: that is what this looks for
        squared = np.vecdot(vectors, vectors)
    return int(np.count_nonzero(~((np.abs(squared - 1) < 1e-3) | (squared == 0))))


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
        else np.lib.format.read_array_header_2_0
    return read_header(f)


def _shard_problem(path: Path, rows: int, dim: int) -> str | None:
    """What is wrong with a shard file that should hold `rows` float32 vectors of `dim`, if anything."""
    try:
        with open(path, "rb") as f:
            shape, fortran_order, dtype = _npy_header(f)
            expected = f.tell() + rows * dim * 4
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return "missing"
    except (ValueError, SyntaxError, EOFError) as err:  # numpy: not an .npy header
        return "not a vector file (its header is unreadable)"
    if fortran_order or dtype != np.float32 or tuple(shape) != (rows, dim):
        return f"it holds {tuple(shape)} {dtype} where the index records ({rows}, {dim}) float32"
    if size != expected:
        return f"truncated: {size} bytes of {expected}" if size < expected else f"{size - expected} bytes too long"
    return None


def _read_rows(path: Path, first: int, out: np.ndarray) -> None:
    """Read len(out) consecutive rows of a float32 .npy file straight into `out`: one read call
    instead of a page fault per 4 KiB of a memory map (seconds for 0.5 GB on some machines)."""
    with open(path, "rb") as f:
        shape, fortran_order, dtype = _npy_header(f)
        if fortran_order or dtype != out.dtype or shape[1:] != out.shape[1:] or first + len(out) > shape[0]:
            raise CollectionError(f"{path.name} does not hold the expected vectors")
        f.seek(first * out.strides[0], os.SEEK_CUR)
        # numpy's stubs lack the buffer protocol before Python 3.12; ndarray has it at run time.
        if f.readinto(memoryview(out).cast("B")) != out.nbytes:  # type: ignore[arg-type]
            raise CollectionError(f"{path.name} is truncated")


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # on a full disk, half a shard would only take more space
        raise
    os.replace(tmp, path)
