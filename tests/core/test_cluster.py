"""`explorer index --ray` on a real Ray cluster started here on 127.0.0.1 with two worker
processes: it makes the collection a local run makes, and a driver killed midway loses and
duplicates nothing."""

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from explorer.core.store import folder_dir
from helpers import add_bad_and_odd_files, copy_sample

MODEL = "efficientnet-lite0"


# The cluster's token, given to every process here: `ray start` no longer makes one when none is
# found (Ray 2.60), and ~/.ray/auth_token is the user's, not the tests'.
TOKEN = secrets.token_hex(32)


def ray_env() -> dict[str, str]:
    """Token authentication, as a real cluster has it: an explicit address needs it said (Ray's
    rule)."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}


@pytest.fixture(scope="module")
def ray_address():
    """A Ray head node of 2 CPUs on loopback, stopped after the module's tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A short temp dir of its own: Ray's Unix sockets live there, and their paths are capped.
    temp = tempfile.mkdtemp(prefix="ray-")
    log = open(Path(temp) / "head.log", "w")
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=ray_env(),
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in (Path(temp) / "head.log").read_text():
        assert head.poll() is None, (Path(temp) / "head.log").read_text()
        assert time.monotonic() < deadline, "the Ray head did not start in 2 minutes"
        time.sleep(0.2)
    yield address
    # The node's processes share the head's session. A graceful stop takes Ray ~30 s; nothing
    # here needs one.
    os.killpg(head.pid, signal.SIGKILL)
    head.wait()
    log.close()
    shutil.rmtree(temp, ignore_errors=True)


def index_on_ray(folder: Path, address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "explorer.cli", "index", str(folder), "--ray", address, "--ray-workers", "2",
         "--quiet", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ray_env(),
    )


def assert_same_collection(ours: Path, reference: Path) -> None:
    """Same files, same skip reasons, vectors within 1e-4, same top-5 results; no row twice."""
    a, b = SearchIndex.open(ours, MODEL), SearchIndex.open(reference, MODEL)
    try:
        assert len(a.paths) == len(set(a.paths)) == a.collection.count()
        assert sorted(a.paths) == sorted(b.paths)
        assert a.collection.skipped() == b.collection.skipped()
        assert a.collection.count("skipped") == b.collection.count("skipped")
        order = [b.paths.index(p) for p in a.paths]
        np.testing.assert_allclose(a.vectors, b.vectors[order], atol=1e-4)
        for row in range(0, len(b.paths), 5):
            query = b.vectors[row]
            top_a = [hit.path.relative_to(ours) for hit in a.search(query, k=5, exact=True)]
            top_b = [hit.path.relative_to(reference) for hit in b.search(query, k=5, exact=True)]
            assert top_a == top_b
        assert all(a.collection.thumbnails.get(p) for p in a.paths)
    finally:
        a.close()
        b.close()


def test_ray_index_makes_the_collection_a_local_index_makes(ray_address, tmp_path, lite0):
    here = copy_sample(tmp_path / "here", ["cat", "coffee", "rocket", "astronaut"])
    expected = add_bad_and_odd_files(here)
    assert any(expected.values()) and None in expected.values()  # files skipped and files kept
    on_ray = tmp_path / "on-ray"
    shutil.copytree(here, on_ray, symlinks=True)

    index_folder(here, lite0)
    job = index_on_ray(on_ray, ray_address, "--batch-size", "4")
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err
    assert "skipped" in out and "2 Ray Data workers" in err

    assert_same_collection(on_ray, here)
    # The collection is an ordinary one: a second run, here, finds nothing to do.
    again = index_folder(on_ray, lite0)
    assert (again.new, again.modified, again.embedded) == (0, 0, 0)


def ok_rows(folder: Path) -> int:
    db = folder_dir(folder) / MODEL / "index.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        try:
            return con.execute("SELECT count(*) FROM files WHERE status = 'ok'").fetchone()[0]
        except sqlite3.OperationalError:  # the schema not written yet
            return 0


def test_a_driver_killed_midway_resumes_without_losing_or_duplicating(ray_address, tmp_path, lite0):
    here = copy_sample(tmp_path / "here")
    on_ray = tmp_path / "on-ray"
    shutil.copytree(here, on_ray)
    total = len(list(here.glob("*/*.jpg")))

    job = index_on_ray(on_ray, ray_address, "--batch-size", "2")
    deadline = time.monotonic() + 300
    while ok_rows(on_ray) < 4:
        assert job.poll() is None, job.communicate()[1]
        assert time.monotonic() < deadline, "no batch committed in 5 minutes"
        time.sleep(0.02)
    job.kill()  # SIGKILL: no clean-up of any kind
    job.communicate()
    committed = ok_rows(on_ray)
    assert 4 <= committed < total, "the kill came too late to test anything"

    # What was committed opens as it is, before any re-run.
    partial = SearchIndex.open(on_ray, MODEL)
    assert len(partial.paths) == len(set(partial.paths)) == committed
    partial.close()

    rerun = index_on_ray(on_ray, ray_address)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert f"{total - committed} new" in out and f"{committed} unchanged" in out

    index_folder(here, lite0)
    assert_same_collection(on_ray, here)


def test_without_ray_the_option_says_how_to_install_it(tmp_path):
    # A `ray` package that fails to import, first on the path: what a machine without Ray sees.
    shadow = tmp_path / "no-ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    folder = copy_sample(tmp_path / "photos", ["cat"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "explorer.cli", "index", str(folder), "--ray"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert "pip install 'explorer[cluster]'" in done.stderr
    assert not folder_dir(folder).exists()  # said before anything was scanned or written
