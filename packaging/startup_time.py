"""Seconds from starting an Explorer executable until its window is up, median of a few starts.

    python packaging/startup_time.py dist/Explorer/Explorer [--runs 3]

The app writes EXPLORER_STARTUP_PROBE once its window is shown and its event loop runs; this
script then stops it. Uses the display it is given (DISPLAY, or xvfb-run), else Qt's offscreen
platform. Each run uses a fresh data folder and settings, so it times a first start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_once(executable: str, timeout: float = 120) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "shown"
        env = dict(os.environ, EXPLORER_STARTUP_PROBE=str(probe), EXPLORER_DATA_DIR=f"{scratch}/data",
                   XDG_CONFIG_HOME=f"{scratch}/config")
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            env["QT_QPA_PLATFORM"] = "offscreen"
        started = time.perf_counter()
        process = subprocess.Popen([executable], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not probe.exists():
                if process.poll() is not None:
                    raise SystemExit(f"{executable} exited with {process.returncode} before showing a window")
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"{executable} showed no window in {timeout:.0f} s")
                time.sleep(0.01)
            return time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executable")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = [start_once(args.executable) for _ in range(args.runs)]
    platform = "display " + os.environ["DISPLAY"] if os.environ.get("DISPLAY") else "offscreen"
    print(f"start-up to a visible window ({platform}): median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    sys.exit(main())
