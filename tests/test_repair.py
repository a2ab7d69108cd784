"""A damaged collection heals itself, a full disk is a message (issue 18): each kind of damage of
the issue's table done to a real indexed folder, then the commands a user runs, in a subprocess."""

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core.query_book import Example, NamedQuery, QueryBook
from explorer.core.store import FORMAT_VERSION, folder_dir, saved_dir, storage_problem

from damage import MODEL, TABLE, overwrite, overwrite_in_place, shard
from helpers import copy_sample


def explorer(*args, limit_file_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # writes past the limit fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, preexec_fn=limit if limit_file_bytes else None)


def top10(folder: Path) -> list:
    result = explorer("search", folder, "--query", folder / "cat" / "cat-flip.jpg", "--k", "10", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["results"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """An indexed folder with a named query, and a copy of its collection to restore."""
    folder = copy_sample(tmp_path_factory.mktemp("repair") / "photos", ["cat", "coffee"])
    assert explorer("index", folder).returncode == 0
    before = top10(folder)
    QueryBook([NamedQuery("cats", [Example.of("cat", None, np.eye(1280, dtype=np.float32)[0])])]
              ).save(saved_dir(folder, MODEL))
    backup = tmp_path_factory.mktemp("backup") / "collection"
    shutil.copytree(folder_dir(folder), backup)
    return folder, before, backup


@pytest.fixture
def folder(pristine):
    folder, _, backup = pristine
    shutil.rmtree(folder_dir(folder), ignore_errors=True)
    shutil.copytree(backup, folder_dir(folder))
    return folder


@pytest.mark.parametrize("row", TABLE)
def test_damage_is_named_then_repaired_by_index_with_the_same_results(pristine, folder, row):
    _, before, _ = pristine
    damage, damaged_name, refused = TABLE[row]
    queries = (saved_dir(folder, MODEL) / "queries.json").read_bytes()
    damage(folder)

    search = explorer("search", folder, "--query", folder / "cat" / "cat-flip.jpg", "--k", "10", "--json")
    info = explorer("info", folder)
    for result in (search, info):
        assert "Traceback" not in result.stderr, result.stderr
        if refused:  # one line naming the damaged file and saying what repairs it
            assert result.returncode == 2, result.stdout
            [line] = result.stderr.strip().splitlines()
            assert damaged_name in line and f"`explorer index {folder}` repairs it" in line, line
        else:
            assert result.returncode == 0, result.stderr
    if not refused:
        assert json.loads(search.stdout)["results"] == before

    index = explorer("index", folder)
    assert index.returncode == 0 and "Traceback" not in index.stderr, index.stderr
    if refused:
        assert f"explorer: repaired {folder_dir(folder)}" in index.stderr and damaged_name in index.stderr
    assert top10(folder) == before
    check = explorer("check", folder)
    assert check.returncode == 0 and "is sound" in check.stdout, check.stdout + check.stderr
    # What the user made survives every repair, byte for byte.
    assert (saved_dir(folder, MODEL) / "queries.json").read_bytes() == queries
    if damaged_name == "index.sqlite":  # kept for a bug report; its intact shard's vectors reused
        assert list((folder_dir(folder) / MODEL).glob("index.sqlite.damaged-*"))
        assert "reusing the vectors of 14 images" in index.stderr
        assert ": 0 new, 0 modified, 14 unchanged" in index.stdout


def test_check_lists_every_damaged_file_and_repair_mends_them(folder, pristine):
    _, before, _ = pristine
    overwrite_in_place(shard(folder))
    overwrite(folder_dir(folder) / "thumbs.sqlite")
    (folder_dir(folder) / "folder.json").write_text("{")
    overwrite(folder_dir(folder) / MODEL / "hnsw.bin")  # its size intact: only reading it shows
    (folder_dir(folder) / MODEL / "layout.npz").write_text("not a map")
    listed = explorer("check", folder)
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 5 and all(" is damaged (" in line for line in lines), lines
    assert {"folder.json", "thumbs.sqlite", shard(folder).name, "hnsw.bin", "layout.npz"} == {
        Path(line.split(" is damaged")[0]).name for line in lines}
    assert "explorer check --repair" in listed.stderr
    assert explorer("check", folder).stdout == listed.stdout  # listing changed nothing
    repaired = explorer("check", "--repair", folder)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "still damaged" not in repaired.stdout and top10(folder) == before


def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path, pristine):
    """Writes fail past a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) as on a full disk; with
    the limit lifted, indexing resumes and keeps what was done."""
    _, before, _ = pristine
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee"])
    full = explorer("index", folder, "--batch-size", "2", "--quiet", limit_file_bytes=128 * 1024)
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    [line] = [line for line in full.stderr.strip().splitlines() if line.startswith("explorer: error:")]
    assert f"while saving the collection of {folder} in {folder_dir(folder)}" in line, line
    kept = int(line.split("the ")[-1].split(" images done so far are kept")[0])
    assert 0 < kept < 14
    resumed = explorer("index", folder)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{14 - kept} new, 0 modified, {kept} unchanged" in resumed.stdout
    assert [(Path(r["path"]).relative_to(folder), r["score"]) for r in top10(folder)] == \
        [(Path(r["path"]).relative_to(pristine[0]), r["score"]) for r in before]


def test_read_only_storage_is_named_as_such(tmp_path):
    """A real SQLite error of a read-only database, and a real full-disk errno."""
    with sqlite3.connect(tmp_path / "t.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
    readonly = sqlite3.connect(f"file:{tmp_path / 't.sqlite'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as err:
        readonly.execute("INSERT INTO t VALUES (1)")
    assert storage_problem(err.value, Path("."))[0] == "the data directory is read-only"
    assert storage_problem(OSError(28, os.strerror(28)), Path("."))[0] == "no space left on device"
    assert storage_problem(ValueError("x"), Path(".")) is None


def test_a_newer_collection_is_refused_and_an_older_one_migrated(folder):
    index_db = folder_dir(folder) / MODEL / "index.sqlite"
    queries = saved_dir(folder, MODEL) / "queries.json"
    # Format 1 kept the named queries inside the model folder.
    old_place = folder_dir(folder) / MODEL / "queries.json"
    queries.replace(old_place)
    shard_files = shard(folder).with_suffix(".files.json")  # and its shards named no files
    expected_files = json.loads(shard_files.read_text())
    shard_files.unlink()
    with sqlite3.connect(index_db) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'format'")
    assert explorer("info", folder).returncode == 0
    assert queries.is_file() and not old_place.exists()
    assert json.loads(shard_files.read_text()) == expected_files
    assert QueryBook.load(queries.parent).names() == ["cats"]
    with sqlite3.connect(index_db) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()[0] == str(FORMAT_VERSION)

    with sqlite3.connect(index_db) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION + 1),))
    for command in ("search", "info", "index"):
        args = ("--query", folder / "cat" / "cat-flip.jpg") if command == "search" else ()
        refused = explorer(command, folder, *args)
        assert refused.returncode == 2 and "written by a newer version of Explorer" in refused.stderr
        assert "Traceback" not in refused.stderr
    manifest = folder_dir(folder) / "folder.json"
    with sqlite3.connect(index_db) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"format": FORMAT_VERSION + 1}))
    refused = explorer("info", folder)
    assert refused.returncode == 2 and "newer version" in refused.stderr and str(folder) in refused.stderr
