"""Bundled resources (the sample collection, ...): the one lookup used by the CLI, GUI, tests and
the frozen app. Never downloads anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path, PurePath

__all__ = ["icon_path", "resource_path", "sample_folder"]


def _candidate_roots(folder: str = "resources") -> list[Path]:
    """The places that may hold a top-level folder of the checkout (resources/ or icons/), in
    the order they are searched. A wheel installs it as the data package explorer._<folder>
    (see pyproject.toml); a PyInstaller bundle holds it under its own name."""
    data_package = f"explorer._{folder}"
    roots: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:  # PyInstaller bundle
        roots.append(Path(meipass) / folder)
    here = Path(__file__).resolve()
    checkout = here.parents[1]
    if (checkout / "pyproject.toml").is_file():  # running from a checkout / editable install
        roots.append(checkout / folder)
    # Installed wheel: the data package sits next to this module, e.g. explorer/_resources/.
    roots.append(here.with_name(f"_{folder}"))
    # Wherever the import system puts that data package (e.g. another editable-install finder).
    try:
        spec = importlib.util.find_spec(data_package)
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


def icon_path(size: int = 256) -> Path:
    """The application icon rendered at `size` px (16, 24, 32, 48, 64, 128, 256 or 512)."""
    for root in _candidate_roots("icons"):
        candidate = root / "png" / f"explorer-{size}.png"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"application icon explorer-{size}.png not found")


def sample_folder() -> Path:
    """Return the bundled sample photo collection (one subfolder per label)."""
    return resource_path("sample")
