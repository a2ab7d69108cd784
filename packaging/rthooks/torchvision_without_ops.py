"""PyInstaller runtime hook: let torchvision import when its compiled ops cannot load.

PyPI's Linux torchvision wheels are built for CUDA. Beside a CPU-only torch their C++ ops (nms,
roi_align, deform_conv...: detection models only) cannot load, and torchvision then fails at
import, registering fake kernels for ops that do not exist. Explorer uses torchvision's
classification models and transforms only (timm imports them too), so such a registration is
skipped. A torchvision built for the CPU (PyTorch's CPU index) has its ops and is unaffected.

The patch waits for torchvision's first import: importing torch here, at start-up, would add a
second before the window shows (the app imports torch only once its window is up).
"""

import importlib.abc
import sys


def _patch_torch_library() -> None:
    import torch
    import torch.library

    register_fake = torch.library.register_fake

    def register_fake_if_defined(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            try:
                getattr(torch.ops.torchvision, op.split("::", 1)[1].split(".")[0])
            except (AttributeError, RuntimeError):
                return lambda function: function  # no such op here: nothing to register
        return register_fake(op, *args, **kwargs)

    torch.library.register_fake = register_fake_if_defined


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Patches torch just before torchvision is first imported; finds nothing itself."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            _patch_torch_library()
        return None


sys.meta_path.insert(0, _BeforeTorchvision())
