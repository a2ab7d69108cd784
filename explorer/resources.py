"""Bundled resources (the sample collection, ...): the one lookup used by the CLI, GUI, tests and
the frozen app. Never downloads anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path, PurePath

__all__ = ["resource_path", "sample_folder"]

# The top-level resources/ folder is installed as this data package (see pyproject.toml).
_DATA_PACKAGE = "explorer._resources"


def _candidate_roots() -> list[Path]:
    """The folders that may hold the resources, in the order they are searched."""
    roots: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:  # PyInstaller bundle
        roots.append(Path(meipass) / "resources")
    here = Path(__file__).resolve()
    checkout = here.parents[1]
    if (checkout / "pyproject.toml").is_file():  # running from a checkout / editable install
        roots.append(checkout / "resources")
    # Installed wheel: the data package sits next to this module as explorer/_resources/.
    roots.append(here.with_name(_DATA_PACKAGE.rpartition(".")[2]))
    # Wherever the import system puts that data package (e.g. another editable-install finder).
    try:
        spec = importlib.util.find_spec(_DATA_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        roots.extend(Path(p) for p in spec.submodule_search_locations)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def resource_path(*parts: str) -> Path:
    """Return the path of a bundled resource, e.g. ``resource_path("sample")``.

    Looks in the PyInstaller bundle, then the source tree's ``resources/``, then the installed
    data package; raises FileNotFoundError naming every place it looked.
    """
    for part in parts:
        pure = PurePath(part)
        if pure.is_absolute() or ".." in pure.parts or not part:
            raise ValueError(f"resource path parts must be relative names, got {part!r}")
    roots = _candidate_roots()
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    name = "/".join(parts) or "(resources folder)"
    looked = "\n".join(f"  {root.joinpath(*parts)}" for root in roots)
    raise FileNotFoundError(
        f"Bundled resource {name!r} not found; looked in:\n{looked}\n"
        "The installation may be incomplete (rebuild the sample with resources/make_sample.py)."
    )


def sample_folder() -> Path:
    """Return the bundled sample photo collection (one subfolder per label)."""
    return resource_path("sample")
