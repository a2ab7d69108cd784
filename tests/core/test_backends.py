"""Inference backends: the same vectors from every installed backend, graphs that heal."""

import logging
import shutil
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from explorer.core import backends, explain, graphs
from explorer.core.ann import exact_search
from explorer.core.images import decode_for_index
from explorer.core.indexer import index_folder
from explorer.core.backbones import fetch_weights, get_spec, load_model
from explorer.core.search import SearchIndex
from explorer.resources import sample_folder

INSTALLED = backends.installed()
REPRESENTATIONS = ["efficientnet-lite0", "efficientnet-lite0@blocks.5+gem"]


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Model inputs of 40 real photographs (every label of the sample, several variants)."""
    paths = sorted(sample_folder().rglob("*.jpg"))[::2][:40]
    return np.stack([decode_for_index(p, 224, None).pixels for p in paths])


@pytest.fixture(scope="module")
def torch_vectors(photos) -> dict[str, np.ndarray]:
    return {name: load_model(name, backend="torch").embed(photos) for name in REPRESENTATIONS}


def test_torch_and_onnxruntime_are_always_there():
    # The default install's backends (pyproject): torch for the exports, ONNX Runtime for speed.
    assert {"torch", "onnxruntime"} <= set(INSTALLED)
    assert backends.preference("auto")[0] != "torch", "auto must pick a faster runtime on a CPU"
    assert backends.preference("auto")[-1] == "torch"
    assert backends.preference("openvino") == ["openvino"]
    with pytest.raises(backends.BackendUnavailable, match="unknown backend"):
        backends.preference("tensorrt")


@pytest.mark.parametrize("backend", [b for b in INSTALLED if b != "torch"])
@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_backend_vectors_match_torch(backend, name, photos, torch_vectors):
    model = load_model(name, backend=backend)
    assert model.backend == backend and model.describe_backend().endswith("(CPU)")
    vectors = model.embed(photos)
    expected = torch_vectors[name]
    assert vectors.shape == expected.shape == (len(photos), get_spec(name).dim)
    assert np.abs(vectors - expected).max() < 1e-4
    # The last batch of an indexing run is smaller: the batch axis of the graph is dynamic.
    assert np.abs(model.embed(photos[:3]) - expected[:3]).max() < 1e-4
    # Every photo as a query: the same top-10, in the same order.
    found, _ = exact_search(vectors, vectors, 10)
    truth, _ = exact_search(expected, expected, 10)
    assert (found == truth).mean() > 0.99, "near-ties may swap; nothing else may change"
    assert all(set(a) == set(b) for a, b in zip(found[:, :5], truth[:, :5]))


@pytest.mark.parametrize("backend", [b for b in INSTALLED if b != "torch"])
def test_backend_feature_maps_match_torch_and_explain_its_own_scores(backend, photos):
    """"Why similar?" on a fast backend: the map graph gives torch's maps, and its grid sums to
    the cosine of that backend's own vectors (the scores the collection holds)."""
    name = "efficientnet-lite0"
    maps = explain.feature_maps(name, photos[:6], backend)
    expected = explain.feature_maps(name, photos[:6], "torch")
    assert maps.shape == expected.shape == (6, 1280, 7, 7)
    assert np.abs(maps - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    vectors = load_model(name, backend=backend).embed(photos[:6])
    for fmap, vector in zip(maps, vectors):
        share = explain.contributions(fmap.astype(np.float64), vectors[0], "gap")
        assert abs(share.similarity - float(vector @ vectors[0])) < 1e-4


def test_both_poolings_of_a_layer_share_one_map_graph():
    gap, gem = get_spec("efficientnet-lite0"), get_spec("efficientnet-lite0+gem")
    sha = fetch_weights(gap)[1]
    assert graphs.graph_path(gap, sha, graphs.MAP) == graphs.graph_path(gem, sha, graphs.MAP)
    assert len({graphs.graph_path(gap, sha), graphs.graph_path(gem, sha), graphs.graph_path(gap, sha, graphs.MAP)}) == 3
    earlier = get_spec("efficientnet-lite0@blocks.5")
    assert graphs.graph_path(earlier, sha, graphs.MAP) != graphs.graph_path(gap, sha, graphs.MAP)


def test_one_collection_indexed_by_two_backends_searches_as_one(photo_folder, tmp_path):
    """Half the folder indexed by torch, the rest by ONNX Runtime: same ranking as all-torch."""
    held_back = tmp_path / "later"
    held_back.mkdir()
    later = sorted(photo_folder.rglob("*.jpg"))[1::2]
    for path in later:
        shutil.move(path, held_back / f"{path.parent.name}--{path.name}")
    first = index_folder(photo_folder, backend="torch")
    assert first.backend == "PyTorch (CPU)"
    for path in later:
        shutil.move(held_back / f"{path.parent.name}--{path.name}", path)
    second = index_folder(photo_folder, backend="onnxruntime")
    assert second.backend == "ONNX Runtime (CPU)" and second.new == len(later)

    torch_model = load_model("efficientnet-lite0", backend="torch")
    index = SearchIndex.open(photo_folder, "efficientnet-lite0")
    try:
        rows = {p: r for r, p in enumerate(index.paths)}
        relative = [p.relative_to(photo_folder).as_posix() for p in sorted(photo_folder.rglob("*.jpg"))]
        pixels = np.stack([decode_for_index(photo_folder / p, 224, None).pixels for p in relative])
        all_torch = torch_model.embed(pixels)
        stored = index.vectors[[rows[p] for p in relative]]
        assert np.abs(stored.astype(np.float32) - all_torch).max() < 1e-3  # stored as float16
        query = all_torch[relative.index("cat/cat-original.jpg")]
        hits = [h.path.relative_to(photo_folder).as_posix() for h in index.search(query, 10)]
        truth = [relative[i] for i in exact_search(all_torch, query[None], 10)[0][0]]
        assert hits[:7] == truth[:7] and set(hits) == set(truth)
    finally:
        index.close()


def _damage_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _damage_random_bytes(path):
    size = path.stat().st_size
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes())


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_random_bytes])
def test_a_damaged_cached_graph_is_exported_again_offline(damage, photos, torch_vectors, tmp_path,
                                                          monkeypatch, caplog, photo_folder):
    spec = get_spec("efficientnet-lite0")
    weights, sha256 = fetch_weights(spec)
    good = graphs.onnx_graph(spec, weights, sha256)  # the session's graph, exported once
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    graph = graphs.graph_path(spec, sha256)
    graph.parent.mkdir(parents=True)
    shutil.copy(good, graph)
    shutil.copy(graphs.record_path(good), graphs.record_path(graph))
    assert graphs.problem_with(graph) is None
    damage(graph)
    assert graphs.problem_with(graph) is not None

    def no_network(*args, **kwargs):
        raise AssertionError("exporting a graph must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with caplog.at_level(logging.WARNING, logger="explorer.core.graphs"):
        model = load_model("efficientnet-lite0", backend="onnxruntime")
    assert any("unusable" in r.getMessage() and graph.name in r.getMessage() for r in caplog.records)
    assert graphs.problem_with(graph) is None
    assert np.abs(model.embed(photos) - torch_vectors["efficientnet-lite0"]).max() < 1e-4
    report = index_folder(photo_folder, model)
    assert report.embedded == len(list(photo_folder.rglob("*.jpg"))) and not report.skipped


def test_a_graph_without_its_record_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    spec = get_spec("efficientnet-lite0")
    graph = graphs.graph_path(spec, fetch_weights(spec)[1])
    graph.parent.mkdir(parents=True)
    graph.write_bytes(b"\x08\x07half an export")  # killed before the record was written
    assert graphs.problem_with(graph) == "missing"
    graphs.record_path(graph).write_text("{not json")
    assert "unreadable record" in graphs.problem_with(graph)


@pytest.mark.skipif("openvino" not in INSTALLED, reason="OpenVINO is an optional extra")
def test_openvino_runner_embeds_from_two_threads_at_once(photos, torch_vectors):
    """The app embeds a dropped query while it indexes: one model, two threads."""
    model = load_model("efficientnet-lite0", backend="openvino")
    results: dict[int, np.ndarray] = {}

    def embed(i):
        results[i] = np.concatenate([model.embed(photos[j::4]) for j in range(4)])

    workers = [threading.Thread(target=embed, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    expected = np.concatenate([torch_vectors["efficientnet-lite0"][j::4] for j in range(4)])
    assert all(np.abs(results[i] - expected).max() < 1e-4 for i in range(2))


def test_without_the_fast_runtimes_everything_runs_on_torch(photo_folder, tmp_path):
    """A machine with torch alone: index and search work, on the PyTorch backend, with no
    network; `explorer models` says which backends are missing."""
    script = f"""
import socket, sys
sys.modules["onnxruntime"] = None  # as if not installed
sys.modules["openvino"] = None
def no_network(*a, **k):
    raise OSError("no network in this test")
socket.socket.connect = no_network
socket.create_connection = no_network
from explorer.cli import main
sys.exit(main(sys.argv[1:]))
"""
    def cli(*args):
        return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                              timeout=300, env={**__import__("os").environ,
                                                "EXPLORER_CACHE_DIR": str(tmp_path / "cache")})

    indexed = cli("index", str(photo_folder))
    assert indexed.returncode == 0, indexed.stderr
    assert "PyTorch (CPU)" in indexed.stderr
    assert not (tmp_path / "cache").exists(), "torch alone exports no graph"
    found = cli("search", str(photo_folder), "--query", str(photo_folder / "cat" / "cat-original.jpg"),
                "--k", "3", "--json")
    assert found.returncode == 0, found.stderr
    assert "cat" in found.stdout.split('"path"')[1]
    listed = cli("models")
    assert listed.returncode == 0, listed.stderr
    assert "onnxruntime" in listed.stdout and "not installed" in listed.stdout


def test_a_shipped_graph_is_used_when_whole_and_skipped_when_damaged(tmp_path, monkeypatch, caplog):
    """The installer ships the default model's graph among its resources (resources/graphs)."""
    spec = get_spec("efficientnet-lite0")
    weights, sha256 = fetch_weights(spec)
    good = graphs.onnx_graph(spec, weights, sha256)
    shipped = tmp_path / "resources" / "graphs"
    shipped.mkdir(parents=True)
    for path in (good, graphs.record_path(good)):
        shutil.copy(path, shipped / path.name)

    def bundled(*parts):
        candidate = tmp_path.joinpath("resources", *parts)
        if not candidate.exists():
            raise FileNotFoundError(candidate)
        return candidate

    monkeypatch.setattr(graphs, "resource_path", bundled)
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    assert graphs.onnx_graph(spec, weights, sha256) == shipped / good.name
    assert not (tmp_path / "cache").exists(), "nothing exported"
    _damage_truncate(shipped / good.name)
    with caplog.at_level(logging.WARNING, logger="explorer.core.graphs"):
        assert graphs.shipped_graph(good.name) is None
    assert any("bundled ONNX graph" in r.getMessage() for r in caplog.records)
