"""ONNX graphs of representations: exported once from the torch module, cached, checked on load.

The graph of a representation is its whole FeatureNetwork (preprocessing, trunk, pooling), so the
ONNX Runtime and OpenVINO backends run exactly what torch runs. Its map graph stops before the
pooling and outputs the feature map, which explain.py decomposes; one serves both poolings of a
layer. A graph is keyed by the representation's name, its weights' checksum, its input size and
the graph format; beside it a small JSON file records the graph file's own size and sha256. A
graph whose record is missing or does not match (half-written, truncated, overwritten) is never
loaded: it is exported again.

Exporting needs torch (and onnx + onnxscript, which torch's exporter uses), no network, and takes
~10 s on 2 cores for EfficientNet-Lite0; afterwards a backend needs neither torch nor the export.
The installer ships the default model's graphs among its resources (packaging/export_graphs.py),
checked the same way, so the frozen app never exports them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from ..resources import resource_path
from .backbones import file_sha256
from .store import temp_beside, write_json_atomic
from .tasks import Progress, no_progress

if TYPE_CHECKING:
    from .backbones import ModelSpec

log = logging.getLogger(__name__)

# Bump when what a graph computes changes (its input layout, or what moves into the graph).
GRAPH_FORMAT = 1
OPSET = 18
INPUT = "pixels"
FEATURES, MAP = "features", "map"  # what a graph outputs: pooled vectors, or feature maps

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class ExportFailed(RuntimeError):
    """The torch module could not be turned into an ONNX graph."""


def cache_root() -> Path:
    """Per-user cache directory; EXPLORER_CACHE_DIR overrides it (tests, portable installs)."""
    override = os.environ.get("EXPLORER_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("Explorer", False))


def graph_path(spec: "ModelSpec", weights_sha256: str, output: str = FEATURES) -> Path:
    size = spec.preprocessing.size
    # A map has no pooling in it: NAME and NAME+gem share the map graph of their layer.
    stem = spec.name if output == FEATURES else f"{spec.backbone or spec.name}@{spec.layer}-map"
    name = f"{stem}-{weights_sha256[:16]}-{size}px-v{GRAPH_FORMAT}.onnx"
    return cache_root() / "graphs" / name


def record_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".json")


def problem_with(graph: Path) -> str | None:
    """Why a cached graph must not be loaded, or None when it is whole."""
    try:
        record = json.loads(record_path(graph).read_text())
        size = graph.stat().st_size
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as err:
        return f"unreadable record ({err})"
    if not isinstance(record, dict):
        return "unreadable record (not an object)"
    if record.get("bytes") != size:
        return f"size {size} bytes, the export wrote {record.get('bytes')}"
    if record.get("sha256") != file_sha256(graph):
        return "checksum differs from the export's"
    return None


def onnx_graph(spec: "ModelSpec", weights: Path, weights_sha256: str,
               progress: Progress = no_progress, output: str = FEATURES) -> Path:
    """The path of a whole, checked ONNX graph of `spec` (its `output`: FEATURES or MAP),
    exporting it on first use."""
    graph = graph_path(spec, weights_sha256, output)
    shipped = shipped_graph(graph.name)
    if shipped is not None:
        return shipped
    with _lock_for(graph):  # two threads wanting one graph export it once
        problem = problem_with(graph)
        if problem is None:
            return graph
        if problem != "missing" or graph.exists():
            log.warning("cached ONNX graph %s is unusable (%s): exporting it again", graph, problem)
        what = "" if output == FEATURES else "'s feature maps"
        progress(0, 0, f"preparing {spec.name}{what} for fast inference (first use only)")
        export(spec, weights, graph, output)
        return graph


def shipped_graph(name: str) -> Path | None:
    """A whole graph of this name among the bundled resources (resources/graphs/), else None."""
    try:
        graph = resource_path("graphs", name)
    except FileNotFoundError:
        return None
    problem = problem_with(graph)
    if problem is not None:
        log.warning("the bundled ONNX graph %s is unusable (%s): using the cache", graph, problem)
        return None
    return graph


def export(spec: "ModelSpec", weights: Path, graph: Path, output: str = FEATURES) -> None:
    """Export `spec`'s FeatureNetwork (or its feature map: `output`) to `graph` (batch size
    dynamic), then write its record."""
    try:
        import torch

        from .torch_network import build_feature_network

        network = build_feature_network(spec, weights, output)
        size = spec.preprocessing.size
        example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's own notes; failures still raise
            program = torch.onnx.export(
                network, (example,), None, input_names=[INPUT], output_names=[output],
                dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET,
                dynamo=True, external_data=False, verbose=False,
            )
        assert program is not None, "the dynamo exporter always returns its program"
    except ImportError as err:
        raise ExportFailed(f"exporting an ONNX graph needs {err.name or err}") from err
    except Exception as err:  # the exporter raises many types; any of them means "no graph"
        raise ExportFailed(f"could not export {spec.name} to ONNX: {type(err).__name__}: {err}") from err
    graph.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(graph)
    try:
        program.save(str(tmp), external_data=False)
        record = {"bytes": tmp.stat().st_size, "sha256": file_sha256(tmp), "representation": spec.name,
                  "output": output, "weights": weights.name, "opset": OPSET, "torch": torch.__version__}
        os.replace(tmp, graph)
    finally:
        tmp.unlink(missing_ok=True)
    # The record last: a graph without one (killed in between) is exported again.
    write_json_atomic(record_path(graph), record)
    log.info("exported %s to %s", spec.name, graph)


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())
