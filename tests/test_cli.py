"""The command-line contract, run as a user runs it: `python -m explorer.cli` in a subprocess."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from explorer.core.store import data_root, folder_dir

from helpers import copy_sample


def explorer(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    folder = copy_sample(tmp_path_factory.mktemp("cli") / "photos", ["cat", "coffee", "rocket"])
    (folder / "broken.jpg").write_text("not a photo")
    result = explorer("index", folder)
    return folder, result


def test_index_prints_a_summary_and_progress_on_stderr(indexed):
    folder, result = indexed
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"indexed {folder}: 21 new, 0 modified, 0 unchanged, 0 removed, 1 skipped")
    assert "images/s" in summary
    assert "embedding" in result.stderr or "embedded" in result.stderr  # the progress bar
    again = explorer("index", folder).stdout.strip().splitlines()[-1]
    assert "0 new, 0 modified, 22 unchanged, 0 removed, 0 skipped" in again  # 22: broken.jpg too


def test_search_json_with_several_queries_from_outside_the_folder(indexed, tmp_path):
    folder, _ = indexed
    outside = tmp_path / "query.png"
    Image.open(folder / "cat" / "cat-original.jpg").save(outside)
    result = explorer("search", folder, "--query", outside, "--k", "4", "--json")
    results = json.loads(result.stdout)["results"]
    assert len(results) == 4
    assert results[0]["path"] == str(folder / "cat" / "cat-original.jpg") and results[0]["score"] > 0.99
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert all(Path(r["path"]).is_absolute() for r in results)

    both = explorer("search", folder, "--query", folder / "cat" / "cat-original.jpg",
                    "--query", folder / "coffee" / "coffee-original.jpg", "--k", "21", "--json")
    top = [Path(r["path"]).parent.name for r in json.loads(both.stdout)["results"][:4]]
    assert set(top) == {"cat", "coffee"}  # the mean of two examples sits between them


def test_search_indexes_a_new_folder_first(tmp_path):
    folder = copy_sample(tmp_path / "fresh", ["rocket"])
    result = explorer("search", folder, "--query", folder / "rocket" / "rocket-flip.jpg", "--json", "--k", "1")
    assert json.loads(result.stdout)["results"][0]["path"].endswith("rocket-flip.jpg")
    assert "indexing it first" in result.stderr


def test_neighbours_export_one_json_object_per_image(indexed):
    folder, _ = indexed
    lines = explorer("neighbours", folder, "--k", "3", "--json").stdout.strip().splitlines()
    assert len(lines) == 21
    for line in lines:
        record = json.loads(line)
        neighbours = [n["path"] for n in record["neighbours"]]
        assert len(neighbours) == 3 and record["path"] not in neighbours


def test_info_and_models(indexed):
    folder, _ = indexed
    info = explorer("info", folder).stdout
    assert "efficientnet-lite0" in info and "images          21" in info
    assert "broken.jpg: not an image file" in info
    assert str(folder_dir(folder)) in info
    data = json.loads(explorer("info", folder, "--json").stdout)
    assert data["dimension"] == 1280 and len(data["weights_sha256"]) == 64
    models = explorer("models").stdout
    assert "efficientnet-lite0" in models and "resnet50" in models and "download" in models


def test_clear_errors_instead_of_tracebacks(tmp_path):
    missing = explorer("index", tmp_path / "nope", check=False)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown = explorer("index", tmp_path, "--model", "alexnet-9000", check=False)
    assert unknown.returncode == 2 and "unknown model" in unknown.stderr
    offline = explorer("index", tmp_path, "--model", "convnext-tiny", check=False)
    assert offline.returncode == 2 and "convnext_tiny-983f1562.pth" in offline.stderr
    assert "Traceback" not in offline.stderr


def test_sample_prints_the_bundled_collection():
    path = Path(explorer("sample").stdout.strip())
    assert path.is_dir() and len(list(path.glob("*/*.jpg"))) >= 40


def _many_photos(folder: Path) -> int:
    """~180 real images (the sample and a flipped copy of each): long enough to interrupt."""
    for i, path in enumerate(sorted(folder.glob("*/*.jpg"))):
        Image.open(path).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(path.with_name(f"v{i}.jpg"))
    return len(list(folder.glob("*/*.jpg")))


def _index_until(folder: Path, rows: int) -> subprocess.Popen:
    """`explorer index FOLDER` in a subprocess, returned once it has committed `rows` files."""
    db_path = folder_dir(folder) / "efficientnet-lite0" / "index.sqlite"
    process = subprocess.Popen([sys.executable, "-m", "explorer.cli", "index", folder, "--quiet",
                                "--batch-size", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    committed = 0
    while time.time() < deadline and process.poll() is None:
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    committed = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            except sqlite3.Error:
                committed = 0
        if committed >= rows:
            break
        time.sleep(0.05)
    assert process.poll() is None, "indexing finished before it could be interrupted"
    return process


def test_kill_9_mid_index_then_resume(tmp_path):
    """A killed indexing run leaves a collection that opens, and the next run completes it."""
    folder = copy_sample(tmp_path / "many")
    total = _many_photos(folder)
    db_path = folder_dir(folder) / "efficientnet-lite0" / "index.sqlite"
    process = _index_until(folder, 24)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()

    resumed = explorer("index", folder).stdout.strip().splitlines()[-1]
    new = int(resumed.split(": ")[1].split(" new")[0])
    assert 0 < new < total, resumed
    info = json.loads(explorer("info", folder, "--json").stdout)
    assert info["images"] == total and info["skipped"] == []
    lines = explorer("neighbours", folder, "--k", "1", "--json").stdout.strip().splitlines()
    paths = [json.loads(line)["path"] for line in lines]
    assert len(paths) == len(set(paths)) == total
    with sqlite3.connect(db_path) as db:
        slots = [s for (s,) in db.execute("SELECT slot FROM files")]
    assert len(slots) == len(set(slots)), "two files share a vector slot"


def test_ctrl_c_mid_index_stops_cleanly_and_keeps_what_was_done(tmp_path):
    folder = copy_sample(tmp_path / "many")
    total = _many_photos(folder)
    process = _index_until(folder, 24)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and out.startswith("cancelled ")
    done = int(out.split(": ")[1].split(" new")[0])
    assert 24 <= done < total
    resumed = explorer("index", folder).stdout.strip().splitlines()[-1]
    assert resumed.startswith("indexed ") and f"{total - done} new" in resumed, resumed


def test_interruptible_turns_ctrl_c_into_a_cancel_and_restores_the_handler():
    from explorer.cli import interruptible

    before = signal.getsignal(signal.SIGINT)
    with interruptible(quiet=True) as (token, progress):
        assert not token()
        signal.raise_signal(signal.SIGINT)  # what Ctrl+C sends; no KeyboardInterrupt here
        assert token()
        progress(1, 2, "embedding")  # quiet: draws nothing
    assert signal.getsignal(signal.SIGINT) is before


def test_demo_indexes_and_searches_the_sample_collection():
    result = explorer("demo")
    ranked = [line.split()[-1] for line in result.stdout.splitlines() if line[:3].strip().isdigit()]
    assert len(ranked) == 10
    assert all("/cat/" in path for path in ranked[:7])  # the cat's seven variants come first


def test_self_test_runs_the_app_on_the_sample_and_leaves_no_trace(tmp_path):
    """What packaging/build.sh runs against the frozen app, here against the source."""
    before = sorted(p.name for p in data_root().iterdir()) if data_root().exists() else []
    result = explorer("--self-test")
    assert result.returncode == 0, result.stderr
    assert "indexed 91 images" in result.stdout and "self-test passed" in result.stdout
    assert "dropped cat-original.jpg: top results cat-original.jpg" in result.stdout
    after = sorted(p.name for p in data_root().iterdir()) if data_root().exists() else []
    assert after == before  # its index went to a temporary folder, since removed


def test_a_mistyped_command_is_an_error_in_the_terminal_not_a_window(tmp_path):
    """A script that mistypes a command must not wait on a window (no display is needed to see it)."""
    typo = explorer("serach", tmp_path / "q.jpg", check=False)
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert typo.stderr.strip() == "explorer: error: 'serach' is neither a command nor a folder (did you mean 'search'?)"
    unknown = explorer("frobnicate", check=False)
    assert unknown.returncode == 2 and "the commands: " in unknown.stderr and "index" in unknown.stderr


@pytest.mark.parametrize("damage", ["random bytes", "truncated to 4 KB"])
def test_a_damaged_thumbnail_cache_is_set_aside_and_search_info_index_work(tmp_path, damage):
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee"])
    explorer("index", folder)
    query = ("search", folder, "--query", folder / "cat" / "cat-flip.jpg", "--k", "10", "--json")
    before = json.loads(explorer(*query).stdout)
    thumbs = folder_dir(folder) / "thumbs.sqlite"
    size = thumbs.stat().st_size
    assert size > 8192  # 14 thumbnails
    if damage == "random bytes":
        thumbs.write_bytes(random.Random(0).randbytes(size))
    else:
        with open(thumbs, "r+b") as f:
            f.truncate(4096)
    for command in (query, ("info", folder), ("index", folder), query):
        result = explorer(*command)
        assert "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout) == before
    # The damaged file is kept for a bug report, its bytes as they were.
    [kept] = [p for p in thumbs.parent.iterdir() if p.name.startswith("thumbs.sqlite.damaged-")
              and not p.name.endswith(("-wal", "-shm"))]
    assert kept.stat().st_size == (size if damage == "random bytes" else 4096)
