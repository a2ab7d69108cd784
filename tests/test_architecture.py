"""The wall between core and GUI, checked by tools rather than by good intentions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports('pyproject.toml'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_code_type_checks():
    """mypy ([tool.mypy] in pyproject.toml) over explorer/core, cli.py and explorer/gui: no errors."""
    result = subprocess.run([sys.executable, "-m", "mypy", "explorer/core", "explorer/cli.py", "explorer/gui"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_and_cli_load_no_qt():
    code = (
        "import sys, explorer.cli, explorer.core.indexer, explorer.core.search;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_installed():
    """pyproject lists the packages a wheel (and the frozen app) gets: a new folder of modules
    that is not listed works in a checkout and is missing from every installation."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "explorer").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"
