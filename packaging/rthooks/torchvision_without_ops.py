"""PyInstaller runtime hook: let torchvision import when its compiled ops cannot load.

PyPI's Linux torchvision wheels are built for CUDA. Beside a CPU-only torch their C++ ops (nms,
roi_align, deform_conv...: detection models only) cannot load, and torchvision then fails at
import, registering fake kernels for ops that do not exist. Explorer uses torchvision's
classification models and transforms only (timm imports them too), so such a registration is
skipped. A torchvision built for the CPU (PyTorch's CPU index) has its ops and is unaffected.
"""

import torch
import torch.library

_register_fake = torch.library.register_fake


def _register_fake_if_defined(op, *args, **kwargs):
    if isinstance(op, str) and op.startswith("torchvision::"):
        try:
            getattr(torch.ops.torchvision, op.split("::", 1)[1].split(".")[0])
        except (AttributeError, RuntimeError):
            return lambda function: function  # no such op here: nothing to register
    return _register_fake(op, *args, **kwargs)


torch.library.register_fake = _register_fake_if_defined
