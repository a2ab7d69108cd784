"""Drop a photo on a running Explorer from another program, through the X server's real drag
and drop (XDND), as a file manager does; then take a screenshot of the screen.

    xvfb-run -s "-screen 0 1920x1080x24" python packaging/xdnd_check.py dist/Explorer/Explorer

Needs xdotool (the mouse) and an X display with the XTEST extension (Xvfb has it). The drag
source is a small Qt window of this script's own, in its own process: it drags a file URL, as
Nautilus or Dolphin would, and reports what the drop target answered. Exit status 0 when
Explorer accepted the drop as a copy and its window then changed (the query panel fills, the
grid re-sorts); the screenshot goes to --screenshot (default build/xdnd-check.png), the one
from just before the drop beside it, so a person can look at them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "resources" / "sample" / "cat" / "cat-original.jpg"
SOURCE_TITLE = "xdnd-check drag source"
MIN_CHANGED = 0.05  # a query re-sorts the grid and fills the query panel: far more than this

# The drag source: a window with the photo's name; a press and move starts a drag of its file
# URL; it prints the drop action the target chose ("CopyAction" when Explorer took it).
DRAG_SOURCE = """
import sys
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QApplication, QLabel

class Source(QLabel):
    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.MouseButton.LeftButton:
            mime = QMimeData()
            mime.setUrls([QUrl.fromLocalFile(sys.argv[1])])
            drag = QDrag(self)
            drag.setMimeData(mime)
            action = drag.exec(Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
            print(action.name, flush=True)  # then stay up, as a file manager does: the target
            # fetches the dropped URLs from us after the drop

app = QApplication([])
source = Source("drag me: " + sys.argv[1].rsplit("/", 1)[-1])
source.setWindowTitle(sys.argv[2])
source.setAlignment(Qt.AlignmentFlag.AlignCenter)
source.setGeometry(int(sys.argv[3]), int(sys.argv[4]), 240, 120)
source.show()
print("ready", flush=True)
app.exec()
"""


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True).stdout


def window_geometry(title: str, timeout: float) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the first visible window whose title contains `title`."""
    deadline = time.monotonic() + timeout
    while True:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", title],
                               capture_output=True, text=True).stdout.split()
        if found:
            shell = xdotool("getwindowgeometry", "--shell", found[0])
            values = dict(line.split("=", 1) for line in shell.split())
            return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])
        if time.monotonic() > deadline:
            raise SystemExit(f"xdnd-check: no window titled {title!r} after {timeout:.0f} s")
        time.sleep(0.2)


def drag(start: tuple[int, int], end: tuple[int, int], steps: int = 25) -> None:
    """Press at start, move there in steps (a real drag: Qt starts it after a few pixels and
    then follows each motion), release at end."""
    xdotool("mousemove", str(start[0]), str(start[1]))
    time.sleep(0.3)
    xdotool("mousedown", "1")
    for i in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * i // steps
        y = start[1] + (end[1] - start[1]) * i // steps
        xdotool("mousemove", str(x), str(y))
        time.sleep(0.05)
    time.sleep(0.5)  # let the target answer the last XdndPosition before the drop
    xdotool("mouseup", "1")


def screenshot(path: Path) -> None:
    subprocess.run(["import", "-window", "root", str(path)], check=True)


def changed_share(before: Path, after: Path, box: tuple[int, int, int, int]) -> float:
    """Share of the pixels inside `box` that differ between two screenshots."""
    from PIL import Image, ImageChops

    with Image.open(before) as a, Image.open(after) as b:
        difference = ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box))
    changed = sum(difference.convert("L").point(lambda v: 255 if v > 16 else 0).histogram()[255:])
    return changed / max(1, (box[2] - box[0]) * (box[3] - box[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("explorer", help="the Explorer executable (frozen, or `explorer` from source)")
    parser.add_argument("--photo", type=Path, default=PHOTO, help="the file to drop")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "build" / "xdnd-check.png")
    parser.add_argument("--settle", type=float, default=25.0,
                        help="seconds for Explorer to index the sample before the drop")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        raise SystemExit("xdnd-check: needs an X display (run it under xvfb-run)")
    photo = args.photo.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, EXPLORER_DATA_DIR=f"{scratch}/data", XDG_CONFIG_HOME=f"{scratch}/config")
        env.pop("QT_QPA_PLATFORM", None)  # the real X display, not offscreen
        explorer = subprocess.Popen([args.explorer], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        source = None
        try:
            x, y, w, h = window_geometry("Explorer \u2014", timeout=120)
            print(f"Explorer window at {x},{y} {w}x{h}; waiting {args.settle:.0f} s for the sample to index")
            time.sleep(args.settle)
            screen_w, screen_h = map(int, xdotool("getdisplaygeometry").split())
            # Beside the window where there is room (so the screenshot shows all of Explorer),
            # else over its bottom-right corner.
            source_x = x + w + 20 if x + w + 260 <= screen_w else max(0, screen_w - 260)
            source_y = y + 20 if x + w + 260 <= screen_w else max(0, screen_h - 140)
            source = subprocess.Popen([sys.executable, "-c", DRAG_SOURCE, str(photo), SOURCE_TITLE,
                                       str(source_x), str(source_y)],
                                      env=dict(env), stdout=subprocess.PIPE, text=True)
            assert source.stdout.readline().strip() == "ready"
            sx, sy, sw, sh = window_geometry(SOURCE_TITLE, timeout=30)
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            before = args.screenshot.with_name(args.screenshot.stem + "-before.png")
            screenshot(before)
            target = (x + w // 2, y + h // 2)  # the grid: drops anywhere on the window count
            drag((sx + sw // 2, sy + sh // 2), target)
            answer = source.stdout.readline().strip()
            print(f"drop of {photo.name} on the Explorer window: the target answered {answer or 'nothing'}")
            time.sleep(5)  # the dropped photo is embedded, the views update
            screenshot(args.screenshot)
            changed = changed_share(before, args.screenshot, (x, y, x + w, y + h))
            print(f"screenshot: {args.screenshot} ({changed:.0%} of the window changed by the drop)")
            if explorer.poll() is not None:
                print(f"xdnd-check FAILED: Explorer exited with {explorer.returncode}")
                return 1
            if answer != "CopyAction":
                print("xdnd-check FAILED: Explorer did not take the drop as a copy")
                return 1
            if changed < MIN_CHANGED:  # accepted, but the query (results, sorted grid) never came
                print("xdnd-check FAILED: the window did not change after the drop")
                return 1
            print("xdnd-check passed")
            return 0
        finally:
            for process in (source, explorer):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
