"""Walking a photo folder: which files are images, their fingerprints, what changed.

Paths are always relative to the folder root with POSIX separators, so a
collection stays valid when the folder moves or is opened from another OS.
No Qt, no torch.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from explorer.core.images import image_extensions

__all__ = [
    "Cancelled",
    "Changes",
    "FileEntry",
    "FolderError",
    "ScanProblem",
    "ScanResult",
    "diff",
    "label_of",
    "scan_folder",
]

# Poll the cancel callback this often while listing a big folder, so a cancel
# is honoured quickly without calling back on every single entry.
_CANCEL_POLL_ENTRIES = 256


@dataclass(frozen=True)
class FileEntry:
    """One image file: relative POSIX path and its fingerprint."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    """Something under the folder that could not be scanned, with a readable reason."""

    path: str
    reason: str


@dataclass
class ScanResult:
    files: list[FileEntry] = field(default_factory=list)  # sorted by path
    problems: list[ScanProblem] = field(default_factory=list)  # sorted by path


class FolderError(Exception):
    """The folder itself is unusable (missing, not a folder, unreadable)."""


class Cancelled(Exception):
    """The scan was cancelled by the caller."""


@dataclass(frozen=True)
class Changes:
    """How a fresh scan differs from what is already indexed."""

    new: list[FileEntry]
    modified: list[FileEntry]
    unchanged: list[FileEntry]
    removed: list[str]  # relative paths known before but gone now


def scan_folder(
    root: str | os.PathLike[str],
    extensions: frozenset[str] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ScanResult:
    """Recursively list the image files under ``root``.

    Hidden entries (name starting with '.') are skipped. Directory symlinks are
    followed, but every real folder is walked at most once, so links cannot
    loop. Broken or looping symlinks and unreadable subfolders become
    ``ScanProblem``s. Raises ``FolderError`` if ``root`` itself is unusable and
    ``Cancelled`` as soon as ``cancelled()`` returns True.
    """
    root_path = os.fspath(root)
    suffixes = frozenset(
        ext.lower() for ext in (image_extensions() if extensions is None else extensions)
    )
    root_stat = _stat_root(root_path)
    walk = _Walk(root_path, suffixes, cancelled)
    walk.run((root_stat.st_dev, root_stat.st_ino))
    walk.files.sort(key=lambda entry: entry.path)
    walk.problems.sort(key=lambda problem: (problem.path, problem.reason))
    return ScanResult(files=walk.files, problems=walk.problems)


def diff(scanned: Iterable[FileEntry], known: Mapping[str, tuple[int, int]]) -> Changes:
    """Compare a scan with ``known`` (relative path -> (size, mtime_ns) already indexed).

    A file is modified when its size or mtime_ns differs.
    """
    new: list[FileEntry] = []
    modified: list[FileEntry] = []
    unchanged: list[FileEntry] = []
    seen: set[str] = set()
    for entry in scanned:
        seen.add(entry.path)
        fingerprint = known.get(entry.path)
        if fingerprint is None:
            new.append(entry)
        elif (entry.size, entry.mtime_ns) != tuple(fingerprint):
            modified.append(entry)
        else:
            unchanged.append(entry)
    removed = sorted(path for path in known if path not in seen)
    return Changes(new=new, modified=modified, unchanged=unchanged, removed=removed)


def label_of(path: str) -> str | None:
    """First-level subfolder name of a relative path; None for files at the root."""
    head, sep, _ = path.partition("/")
    return head if sep and head else None


def name_order(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(lower-cased paths in order, their positions): paths sorted by name, case-insensitively."""
    keys = np.char.lower(np.array(paths, dtype=str))
    positions = np.argsort(keys, kind="stable")
    return keys[positions], positions


# ---- internals


def _stat_root(root: str) -> os.stat_result:
    try:
        st = os.stat(root)
    except FileNotFoundError as exc:
        raise FolderError(f"folder not found: {root}") from exc
    except PermissionError as exc:
        raise FolderError(f"permission denied: {root}") from exc
    except OSError as exc:
        raise FolderError(f"cannot open folder {root}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise FolderError(f"not a folder: {root}")
    # Listing is what the scan needs; check it here so an unreadable root is a
    # FolderError, not a ScanProblem about "".
    try:
        with os.scandir(root):
            pass
    except PermissionError as exc:
        raise FolderError(f"permission denied: {root}") from exc
    except OSError as exc:
        raise FolderError(f"cannot read folder {root}: {exc.strerror or exc}") from exc
    return st


class _Walk:
    """Iterative depth-first walk (no recursion limit on deep trees)."""

    def __init__(
        self, root: str, suffixes: frozenset[str], cancelled: Callable[[], bool] | None
    ) -> None:
        self.root = root
        self.suffixes = suffixes
        self.cancelled = cancelled
        self.files: list[FileEntry] = []
        self.problems: list[ScanProblem] = []
        self.visited: set[tuple[int, int]] = set()
        self.entries_seen = 0

    def run(self, root_key: tuple[int, int]) -> None:
        self.visited.add(root_key)
        # (absolute path, relative path) of real folders still to list.
        pending: list[tuple[str, str]] = [(self.root, "")]
        # Symlinked folders are walked only after every real folder, so a link
        # pointing inside the tree never claims files under its own path
        # instead of their real one.
        linked: list[tuple[str, str, tuple[int, int]]] = []
        while pending or linked:
            self._check_cancel()
            if pending:
                self._list(*pending.pop(), pending, linked)
                continue
            abs_path, rel_path, key = linked.pop(0)
            if key in self.visited:
                self._problem(rel_path, self._why_seen(abs_path))
                continue
            self.visited.add(key)
            self._list(abs_path, rel_path, pending, linked)

    def _list(
        self,
        abs_dir: str,
        rel_dir: str,
        pending: list[tuple[str, str]],
        linked: list[tuple[str, str, tuple[int, int]]],
    ) -> None:
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda entry: entry.name)
        except PermissionError:
            self._problem(rel_dir, "permission denied (folder)")
            return
        except FileNotFoundError:
            self._problem(rel_dir, "folder vanished during the scan")
            return
        except OSError as exc:
            self._problem(rel_dir, _os_reason(exc, "cannot read folder"))
            return
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            self.entries_seen += 1
            if self.entries_seen % _CANCEL_POLL_ENTRIES == 0:
                self._check_cancel()
            name = entry.name
            if name.startswith("."):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                self._entry(entry, rel, subdirs, linked)
            except OSError as exc:  # e.g. a stat failing on a flaky network share
                self._problem(rel, _os_reason(exc, "cannot read"))
        # Reverse so that popping from the stack visits subfolders in name order.
        pending.extend(reversed(subdirs))

    def _entry(
        self,
        entry: os.DirEntry[str],
        rel: str,
        subdirs: list[tuple[str, str]],
        linked: list[tuple[str, str, tuple[int, int]]],
    ) -> None:
        is_image_name = os.path.splitext(entry.name)[1].lower() in self.suffixes
        if not entry.is_symlink():
            # d_type from the directory listing: no extra syscall for most entries.
            if entry.is_dir(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                key = (st.st_dev, st.st_ino)
                if key in self.visited:  # a bind mount looping back
                    self._problem(rel, "folder already scanned (mounted twice)")
                elif _valid_text(rel):
                    self.visited.add(key)
                    subdirs.append((entry.path, rel))
                else:
                    self._problem(_printable(rel), "folder name is not valid text")
                return
            if is_image_name:
                self._add_file(rel, entry.stat(follow_symlinks=False))
            return
        # A symlink: follow it to learn what it is.
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            if is_image_name or not os.path.splitext(entry.name)[1]:
                self._problem(rel, "broken symlink")
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                if is_image_name or not os.path.splitext(entry.name)[1]:
                    self._problem(rel, "symlink loop")
                return
            raise
        if stat.S_ISDIR(st.st_mode):
            linked.append((entry.path, rel, (st.st_dev, st.st_ino)))
        elif is_image_name:
            self._add_file(rel, st)

    def _add_file(self, rel: str, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            return  # FIFOs, sockets, devices named like images
        if not _valid_text(rel):
            # Undecodable bytes (surrogate escapes) cannot be stored as text.
            self._problem(_printable(rel), "file name is not valid text")
            return
        self.files.append(FileEntry(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns))

    def _why_seen(self, link_path: str) -> str:
        # A link to one of its own ancestors is a loop; otherwise the target was
        # simply reached another way and is not scanned twice.
        target = os.path.realpath(link_path)
        here = os.path.realpath(os.path.dirname(link_path))
        if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
            return "symlink loop"
        return "symlink to a folder already scanned"

    def _problem(self, rel: str, reason: str) -> None:
        self.problems.append(ScanProblem(path=rel, reason=reason))

    def _check_cancel(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("scan cancelled")


def _os_reason(exc: OSError, what: str) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"{what} ({exc.strerror or exc})"


def _valid_text(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
