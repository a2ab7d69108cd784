"""Tests for explorer.core.catalog, on real folder trees made in tmp_path."""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pytest

from explorer.core.catalog import (
    Cancelled,
    Changes,
    FileEntry,
    FolderError,
    ScanProblem,
    ScanResult,
    diff,
    label_of,
    scan_folder,
)
from explorer.core.images import image_extensions

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks/permissions")


def touch(root: Path, rel: str, data: bytes = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def paths(result: ScanResult) -> list[str]:
    return [entry.path for entry in result.files]


def problems(result: ScanResult) -> dict[str, str]:
    return {problem.path: problem.reason for problem in result.problems}


def is_privileged() -> bool:
    """True when permission bits do not stop us (root): those tests cannot run."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


# ---- scan_folder


def test_recursive_sorted_posix_paths(tmp_path: Path) -> None:
    for rel in ("b.jpg", "a/z.png", "a/b/c/deep.webp", "a/b/m.gif", "c.tiff", "A.bmp"):
        touch(tmp_path, rel)
    result = scan_folder(tmp_path)
    assert paths(result) == sorted(
        ["b.jpg", "a/z.png", "a/b/c/deep.webp", "a/b/m.gif", "c.tiff", "A.bmp"]
    )
    assert all("\\" not in p and not p.startswith("/") for p in paths(result))
    assert result.problems == []


def test_fingerprints(tmp_path: Path) -> None:
    path = touch(tmp_path, "sub/photo.jpg", b"12345")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    (entry,) = scan_folder(tmp_path).files
    assert entry == FileEntry(path="sub/photo.jpg", size=5, mtime_ns=os.stat(path).st_mtime_ns)


def test_extension_filter_is_case_insensitive(tmp_path: Path) -> None:
    for rel in (
        "a.JPG",
        "b.Jpeg",
        "c.PNG",
        "d.jpe",
        "e.TIF",
        "notes.txt",
        "f.jpgx",
        "noext",
        "g.jpg.bak",
    ):
        touch(tmp_path, rel)
    assert paths(scan_folder(tmp_path)) == ["a.JPG", "b.Jpeg", "c.PNG", "d.jpe", "e.TIF"]


def test_custom_extensions_are_normalised(tmp_path: Path) -> None:
    for rel in ("a.png", "b.JPG", "c.raw"):
        touch(tmp_path, rel)
    assert paths(scan_folder(tmp_path, extensions=frozenset({".PNG", ".raw"}))) == [
        "a.png",
        "c.raw",
    ]


def test_default_extensions_come_from_images(tmp_path: Path) -> None:
    for ext in sorted(image_extensions()):
        touch(tmp_path, f"x{ext}")
    assert len(scan_folder(tmp_path).files) == len(image_extensions())


def test_hidden_files_and_folders_skipped(tmp_path: Path) -> None:
    for rel in (
        ".hidden.jpg",
        ".git/obj.jpg",
        "ok/.thumbs/t.jpg",
        "ok/shown.jpg",
        ".Trash-1000/x.png",
    ):
        touch(tmp_path, rel)
    assert paths(scan_folder(tmp_path)) == ["ok/shown.jpg"]


def test_hidden_root_itself_is_fine(tmp_path: Path) -> None:
    touch(tmp_path, ".photos/a.jpg")
    assert paths(scan_folder(tmp_path / ".photos")) == ["a.jpg"]


def test_unicode_names_kept_as_is(tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "café.jpg")
    nfd = unicodedata.normalize("NFD", "café.jpg")
    names = ["фото/кот.jpg", "日本/写真.png", "emoji 📷.gif", nfc, f"sub/{nfd}"]
    for rel in names:
        touch(tmp_path, rel)
    found = paths(scan_folder(tmp_path))
    assert found == sorted(names)
    assert f"sub/{nfd}" in found and nfc in found  # no normalisation either way


@pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem that stores raw bytes")
def test_undecodable_name_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    touch(tmp_path, "good.jpg")
    with open(os.fsencode(tmp_path) + b"/bad\xff.jpg", "wb") as fp:
        fp.write(b"x")
    result = scan_folder(tmp_path)
    assert paths(result) == ["good.jpg"]
    assert problems(result) == {"bad\ufffd.jpg": "file name is not valid text"}


def test_deep_tree(tmp_path: Path) -> None:
    rel = "/".join(f"d{i}" for i in range(60)) + "/bottom.jpg"
    touch(tmp_path, rel)
    assert paths(scan_folder(tmp_path)) == [rel]


@posix_only
def test_fifo_named_like_an_image_is_ignored(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    touch(tmp_path, "real.jpg")
    assert paths(scan_folder(tmp_path)) == ["real.jpg"]


# ---- symlinks


@posix_only
def test_symlink_dir_loops_terminate(tmp_path: Path) -> None:
    touch(tmp_path, "a/photo.jpg")
    touch(tmp_path, "a/b/inner.jpg")
    (tmp_path / "a" / "b" / "up").symlink_to("..", target_is_directory=True)  # -> a
    (tmp_path / "a" / "self").symlink_to(".", target_is_directory=True)
    (tmp_path / "a" / "root").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "sibling").symlink_to("a/b", target_is_directory=True)  # seen, not a loop
    result = scan_folder(tmp_path)
    # Real paths win over link paths; nothing is listed twice.
    assert paths(result) == ["a/b/inner.jpg", "a/photo.jpg"]
    assert problems(result) == {
        "a/b/up": "symlink loop",
        "a/self": "symlink loop",
        "a/root": "symlink loop",
        "sibling": "symlink to a folder already scanned",
    }


@posix_only
def test_symlink_to_outside_folder_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside, "x.jpg", b"abc")
    touch(outside, "nested/y.png")
    root = tmp_path / "root"
    touch(root, "own.jpg")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "linked_again").symlink_to(outside, target_is_directory=True)
    result = scan_folder(root)
    assert paths(result) == ["linked/nested/y.png", "linked/x.jpg", "own.jpg"]
    assert problems(result) == {"linked_again": "symlink to a folder already scanned"}


@posix_only
def test_symlinked_root(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert paths(scan_folder(tmp_path / "link")) == ["a.jpg"]


@posix_only
def test_file_symlinks(tmp_path: Path) -> None:
    target = touch(tmp_path, "store/target.bin", b"123456")
    (tmp_path / "good.jpg").symlink_to(target)
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    (tmp_path / "loop1.jpg").symlink_to(tmp_path / "loop2.jpg")
    (tmp_path / "loop2.jpg").symlink_to(tmp_path / "loop1.jpg")
    (tmp_path / "broken_dir").symlink_to(tmp_path / "nowhere")
    (tmp_path / "readme.txt").symlink_to(tmp_path / "nowhere.txt")  # not an image: not our business
    result = scan_folder(tmp_path)
    assert [(e.path, e.size) for e in result.files] == [("good.jpg", 6)]
    assert problems(result) == {
        "broken.jpg": "broken symlink",
        "broken_dir": "broken symlink",
        "loop1.jpg": "symlink loop",
        "loop2.jpg": "symlink loop",
    }
    assert result.problems == sorted(result.problems, key=lambda p: p.path)
    assert all(isinstance(p, ScanProblem) for p in result.problems)


# ---- errors and cancel


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FolderError, match="folder not found"):
        scan_folder(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    path = touch(tmp_path, "photo.jpg")
    with pytest.raises(FolderError, match="not a folder"):
        scan_folder(path)


@posix_only
def test_unreadable_root(tmp_path: Path) -> None:
    if is_privileged():
        pytest.skip("running as root: permission bits are not enforced")
    root = tmp_path / "locked"
    touch(root, "a.jpg")
    root.chmod(0)
    try:
        with pytest.raises(FolderError, match="permission denied"):
            scan_folder(root)
    finally:
        root.chmod(0o755)


@posix_only
def test_unreadable_subfolder_is_a_problem(tmp_path: Path) -> None:
    if is_privileged():
        pytest.skip("running as root: permission bits are not enforced")
    touch(tmp_path, "ok.jpg")
    locked = tmp_path / "locked"
    touch(locked, "secret.jpg")
    locked.chmod(0)
    try:
        result = scan_folder(tmp_path)
    finally:
        locked.chmod(0o755)
    assert paths(result) == ["ok.jpg"]
    assert problems(result) == {"locked": "permission denied (folder)"}


def test_cancel_before_start(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg")
    with pytest.raises(Cancelled):
        scan_folder(tmp_path, cancelled=lambda: True)


def test_cancel_midway_stops_early(tmp_path: Path) -> None:
    for i in range(30):
        touch(tmp_path, f"d{i:02}/x.jpg")
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5

    with pytest.raises(Cancelled):
        scan_folder(tmp_path, cancelled=cancelled)
    assert calls == 6  # it stopped at the first True, long before visiting 31 folders


def test_cancel_polled_inside_one_big_folder(tmp_path: Path) -> None:
    for i in range(600):
        touch(tmp_path, f"{i:04}.jpg")
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 1  # the first check (before listing) passes, later ones cancel

    with pytest.raises(Cancelled):
        scan_folder(tmp_path, cancelled=cancelled)


def test_never_cancelled(tmp_path: Path) -> None:
    touch(tmp_path, "a/b.jpg")
    assert paths(scan_folder(str(tmp_path), cancelled=lambda: False)) == ["a/b.jpg"]


# ---- diff / label_of


def test_diff() -> None:
    scanned = [
        FileEntry("a.jpg", 10, 100),  # unchanged
        FileEntry("b.jpg", 11, 100),  # size changed
        FileEntry("c.jpg", 10, 101),  # mtime changed
        FileEntry("d/new.jpg", 5, 5),  # new
    ]
    known = {
        "a.jpg": (10, 100),
        "b.jpg": (10, 100),
        "c.jpg": (10, 100),
        "gone.jpg": (1, 1),
        "d/old.png": (2, 2),
    }
    changes = diff(scanned, known)
    assert changes == Changes(
        new=[FileEntry("d/new.jpg", 5, 5)],
        modified=[FileEntry("b.jpg", 11, 100), FileEntry("c.jpg", 10, 101)],
        unchanged=[FileEntry("a.jpg", 10, 100)],
        removed=["d/old.png", "gone.jpg"],
    )


def test_diff_empty_sides() -> None:
    entries = [FileEntry("x.jpg", 1, 2)]
    assert diff(entries, {}) == Changes(new=entries, modified=[], unchanged=[], removed=[])
    assert diff([], {"x.jpg": (1, 2)}) == Changes(
        new=[], modified=[], unchanged=[], removed=["x.jpg"]
    )
    assert diff(iter(entries), {"x.jpg": [1, 2]}).unchanged == entries  # type: ignore[dict-item]


def test_diff_of_a_real_rescan(tmp_path: Path) -> None:
    touch(tmp_path, "keep.jpg", b"1")
    edit = touch(tmp_path, "edit.jpg", b"1")
    gone = touch(tmp_path, "gone.jpg", b"1")
    first = scan_folder(tmp_path)
    known = {e.path: (e.size, e.mtime_ns) for e in first.files}
    edit.write_bytes(b"22")
    gone.unlink()
    touch(tmp_path, "sub/added.png")
    changes = diff(scan_folder(tmp_path).files, known)
    assert [e.path for e in changes.new] == ["sub/added.png"]
    assert [e.path for e in changes.modified] == ["edit.jpg"]
    assert [e.path for e in changes.unchanged] == ["keep.jpg"]
    assert changes.removed == ["gone.jpg"]


def test_label_of() -> None:
    assert label_of("cats/a.jpg") == "cats"
    assert label_of("cats/kittens/b.jpg") == "cats"
    assert label_of("root.jpg") is None
    assert label_of("фото/кот.jpg") == "фото"
    assert label_of("") is None
