"""Inference backends: how a representation's forward pass runs, apart from what it computes.

A ModelSpec says what a representation is (weights, preprocessing, layer, pooling); a backend
says how its forward pass runs: in PyTorch, or as its ONNX graph (graphs.py) in ONNX Runtime or
OpenVINO. Every backend takes the decoder's uint8 (N, H, W, 3) pixels and returns the same
pooled features to within 1e-4, so a collection never records which one made its vectors and
switching backend never forces a re-index. A lower precision would be another representation.
A map runner (output=MAP) returns the feature maps before pooling instead, for explain.py.

`auto` takes the first backend of `preference()` that starts: a GPU when one is usable, else the
fastest CPU runtime installed (measured with bench/bench_core.py), else torch, which is always
there.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from .graphs import FEATURES
from .tasks import Progress, no_progress

if TYPE_CHECKING:
    from .backbones import ModelSpec

log = logging.getLogger(__name__)

AUTO = "auto"
ONNXRUNTIME, OPENVINO, TORCH = "onnxruntime", "openvino", "torch"
BACKENDS = (ONNXRUNTIME, OPENVINO, TORCH)
LABELS = {AUTO: "Automatic", ONNXRUNTIME: "ONNX Runtime", OPENVINO: "OpenVINO", TORCH: "PyTorch"}
_MODULES = {ONNXRUNTIME: "onnxruntime", OPENVINO: "openvino", TORCH: "torch"}
_DISTRIBUTIONS = {ONNXRUNTIME: ("onnxruntime", "onnxruntime-gpu"), OPENVINO: ("openvino",),
                  TORCH: ("torch",)}
# On a CPU, fastest first: bench/bench_core.py's indexing runs on 2 cores, EfficientNet-Lite0.
CPU_ORDER = (ONNXRUNTIME, OPENVINO, TORCH)


class BackendUnavailable(RuntimeError):
    """The backend asked for is not installed or could not run this representation."""


class Runner(Protocol):
    """A representation ready to run: uint8 (N, H, W, 3) pixels -> (N, dim) float32 features
    (a map runner: (N, C, H, W) float32 feature maps)."""

    backend: str
    device: str

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


def threads() -> int:
    """Intra-op threads: every core. The decode threads mostly wait on Pillow's C code with the
    GIL released, and the pipeline measured best with both sharing all cores. A process given
    fewer says so in OMP_NUM_THREADS (Ray sets it to each worker's share of the CPUs)."""
    allotted = os.environ.get("OMP_NUM_THREADS", "")
    if allotted.isdigit() and int(allotted) > 0:
        return int(allotted)
    return max(1, os.cpu_count() or 1)


def is_installed(backend: str) -> bool:
    try:
        return importlib.util.find_spec(_MODULES[backend]) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked with sys.modules[name] = None
        return False


def installed() -> list[str]:
    return [b for b in BACKENDS if is_installed(b)]


def version(backend: str) -> str | None:
    for distribution in _DISTRIBUTIONS[backend]:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def install_hint(backend: str) -> str:
    """What to run to get a backend that is not installed."""
    return "pip install 'explorer[openvino]'" if backend == OPENVINO else f"pip install {_MODULES[backend]}"


def describe(backend: str, device: str = "") -> str:
    """A label for people: "ONNX Runtime (CPU)"."""
    return LABELS.get(backend, backend) + (f" ({device})" if device else "")


def preference(requested: str = AUTO) -> list[str]:
    """The backends to try, in order, for `requested` (a backend name or "auto")."""
    if requested != AUTO:
        if requested not in BACKENDS:
            raise BackendUnavailable(f"unknown backend {requested!r}; choose one of "
                                     f"{', '.join((AUTO, *BACKENDS))}")
        return [requested]
    order = [b for b in CPU_ORDER if is_installed(b)]
    if _onnxruntime_gpu_providers():
        order.remove(ONNXRUNTIME)
        order.insert(0, ONNXRUNTIME)
    elif _torch_gpu():
        order.remove(TORCH)
        order.insert(0, TORCH)
    return order


def create_runner(spec: "ModelSpec", weights: Path, weights_sha256: str,
                  requested: str = AUTO, progress: Progress = no_progress,
                  output: str = FEATURES) -> Runner:
    """Start `spec` (its pooled features, or output=MAP: its feature maps) on the requested
    backend; `auto` falls through to the next one on failure."""
    errors = []
    for backend in preference(requested):
        try:
            return _CREATE[backend](spec, weights, weights_sha256, progress, output)
        except (ImportError, BackendUnavailable, RuntimeError, OSError) as err:
            if requested != AUTO:
                if isinstance(err, BackendUnavailable):
                    raise
                raise BackendUnavailable(f"{describe(backend)} cannot run {spec.name}: {err}") from err
            log.warning("%s cannot run %s (%s); trying the next backend", describe(backend), spec.name, err)
            errors.append(f"{backend}: {err}")
    raise BackendUnavailable(f"no inference backend could run {spec.name}: " + "; ".join(errors))


# --- torch ---------------------------------------------------------------------------------


def _torch_gpu() -> str | None:
    """"cuda" or "mps" when torch can use one. Imports torch only where a GPU may be present, so
    the usual CPU start-up never pays its 1-2 s import."""
    if not is_installed(TORCH):
        return None
    may_have_gpu = (os.path.exists("/proc/driver/nvidia/version") if sys.platform.startswith("linux")
                    else True)  # Windows and macOS: no cheap test; ask torch
    if not may_have_gpu:
        return None
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else None


@dataclass
class TorchRunner:
    network: Any  # torch_network.FeatureNetwork (or FeatureMapNetwork)
    device: str = "CPU"
    backend: str = TORCH

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(pixels))
        if self.device != "CPU":
            x = x.to(self.device.lower())
        with torch.inference_mode():
            return self.network(x).cpu().numpy().astype(np.float32, copy=False)


def _start_torch(spec: "ModelSpec", weights: Path, weights_sha256: str, progress: Progress,
                 output: str) -> TorchRunner:
    import torch

    from .torch_network import build_feature_network

    torch.set_num_threads(threads())
    network = build_feature_network(spec, weights, output)
    device = _torch_gpu()
    if device == "cuda":
        # TF32 convolutions would move vectors ~1e-3 away from every other backend's.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    if device:
        network = network.to(device)
    return TorchRunner(network, device.upper() if device else "CPU")


# --- ONNX Runtime --------------------------------------------------------------------------


def _onnxruntime_gpu_providers() -> list[str]:
    if not is_installed(ONNXRUNTIME):
        return []
    try:
        import onnxruntime
    except ImportError:
        return []
    # Only CUDA: its kernels are float32 like the CPU's. CoreML and DirectML may compute in
    # float16, which would make another representation.
    return [p for p in onnxruntime.get_available_providers() if p == "CUDAExecutionProvider"]


@dataclass
class OnnxRuntimeRunner:
    session: Any  # onnxruntime.InferenceSession
    device: str
    backend: str = ONNXRUNTIME

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        from .graphs import INPUT

        return self.session.run(None, {INPUT: np.ascontiguousarray(pixels, np.uint8)})[0]


def _start_onnxruntime(spec: "ModelSpec", weights: Path, weights_sha256: str,
                       progress: Progress, output: str) -> OnnxRuntimeRunner:
    import onnxruntime

    from .graphs import onnx_graph

    graph = onnx_graph(spec, weights, weights_sha256, progress, output)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    # No busy-waiting between kernels: the decode threads need those cycles (measured: a few %
    # more images/s, and no core burnt while the app idles between batches).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are not for our users
    providers = _onnxruntime_gpu_providers() + ["CPUExecutionProvider"]
    try:
        session = onnxruntime.InferenceSession(str(graph), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types
        raise BackendUnavailable(f"ONNX Runtime could not load {graph.name}: {err}") from err
    device = "CUDA" if session.get_providers()[0] == "CUDAExecutionProvider" else "CPU"
    return OnnxRuntimeRunner(session, device)


# --- OpenVINO ------------------------------------------------------------------------------


@dataclass
class OpenVinoRunner:
    compiled: Any  # openvino.CompiledModel
    device: str = "CPU"
    backend: str = OPENVINO

    # An infer request is not thread-safe, and the app embeds a query while it indexes.
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(pixels, np.uint8)})
        return np.array(result[0], np.float32)  # a copy: the request reuses its output buffer


def _start_openvino(spec: "ModelSpec", weights: Path, weights_sha256: str,
                    progress: Progress, output: str) -> OpenVinoRunner:
    import openvino

    from .graphs import onnx_graph

    graph = onnx_graph(spec, weights, weights_sha256, progress, output)
    config = {
        "PERFORMANCE_HINT": "LATENCY",  # one batch at a time on all cores: measured 2x THROUGHPUT
        "INFERENCE_NUM_THREADS": threads(),
        "INFERENCE_PRECISION_HINT": "f32",  # CPUs with bf16 units would otherwise use bf16
    }
    try:
        compiled = openvino.Core().compile_model(str(graph), "CPU", config)
    except Exception as err:  # OpenVINO raises RuntimeError and its own types
        raise BackendUnavailable(f"OpenVINO could not compile {graph.name}: {err}") from err
    return OpenVinoRunner(compiled)


_CREATE: dict[str, Callable[..., Runner]] = {TORCH: _start_torch, ONNXRUNTIME: _start_onnxruntime, OPENVINO: _start_openvino}
