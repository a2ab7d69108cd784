"""Export the ONNX graphs the installer ships (each model's features and its feature maps, for
"Why similar?"), so the frozen app never exports them itself.

    python packaging/export_graphs.py DESTINATION [MODEL ...]   (default: the default model)

Writes DESTINATION/NAME.onnx and its NAME.onnx.json record, exactly as the per-user cache holds
them (explorer.core.graphs); the spec bundles DESTINATION as resources/graphs.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import tempfile
from pathlib import Path


def main(destination: str, names: list[str]) -> int:
    cache = tempfile.mkdtemp(prefix="explorer-graphs-")
    os.environ["EXPLORER_CACHE_DIR"] = cache  # a fresh cache: every graph is exported here
    # The build's CPU torch beside PyPI's CUDA torchvision: the frozen app's runtime hook lets
    # torchvision (which timm imports) load; the export needs it just the same.
    runpy.run_path(str(Path(__file__).with_name("rthooks") / "torchvision_without_ops.py"))
    from explorer.core import graphs
    from explorer.core.backbones import DEFAULT_MODEL, fetch_weights, get_spec

    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    for name in names or [DEFAULT_MODEL]:
        spec = get_spec(name)
        weights, sha256 = fetch_weights(spec)
        for output in (graphs.FEATURES, graphs.MAP):
            graph = graphs.onnx_graph(spec, weights, sha256, output=output)
            for path in (graph, graphs.record_path(graph)):
                shutil.copy2(path, target / path.name)
            print(f"{name}: {graph.name} ({graph.stat().st_size / 1e6:.1f} MB)")
    shutil.rmtree(cache)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
