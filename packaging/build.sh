#!/usr/bin/env bash
# Build the installable app: dist/Explorer/ (start it with dist/Explorer/Explorer), then run the
# frozen app's --self-test so that a broken bundle fails the build. Prints the build time, the
# bundle's size and the time the frozen app takes to show its window.
#
#   bash packaging/build.sh          (Linux; on Windows and macOS see README "Build the installer")
#
# The build runs in its own virtual environment (build/packaging-venv) with a CPU-only torch:
# the default torch wheel on Linux drags in ~3 GB of CUDA libraries that inference on a CPU never
# loads. Set PYTHON to choose the interpreter (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

PYTHON=${PYTHON:-python3}
VENV=build/packaging-venv
TORCH="torch==2.13.0+cpu"
TORCHVISION="torchvision==0.28.0"
CPU_INDEX=https://download.pytorch.org/whl/cpu

# Qt's X11 plugin needs these; PyInstaller bundles them only if this machine has them, and a
# desktop without them (libxcb-cursor0 is often missing) would get no window at all.
missing=""
known=$(ldconfig -p)  # listed once: `ldconfig -p | grep -q` fails under pipefail (SIGPIPE)
for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-image.so.0 \
           libxcb-render-util.so.0 libxkbcommon-x11.so.0; do
    grep -q "$lib" <<<"$known" || missing="$missing $lib"
done
if [ -n "$missing" ]; then
    echo "build: missing X11 libraries to bundle:$missing" >&2
    echo "  Debian/Ubuntu: apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
# torch and torchvision built for the CPU: from a local wheel folder (pip's find-links) if there
# is one, else from PyTorch's CPU index. Without a CPU torchvision, PyPI's (built for CUDA) does:
# its detection ops stay unloaded, which Explorer never uses (see rthooks/). Then the app itself
# (non-editable, as users get it), the rest of the dependencies and PyInstaller.
cpu_wheel() {
    "$py" -m pip install --quiet --no-deps --no-index "$1" 2>/dev/null \
        || "$py" -m pip install --quiet --no-deps --retries 0 --timeout 15 --index-url "$CPU_INDEX" "$1" 2>/dev/null
}
cpu_wheel "$TORCH" || { echo "build: no CPU-only $TORCH (local wheels or $CPU_INDEX)" >&2; exit 1; }
cpu_wheel "$TORCHVISION+cpu" \
    || { echo "build: no CPU $TORCHVISION; using PyPI's"; "$py" -m pip install --quiet --no-deps "$TORCHVISION"; }
"$py" -m pip install --quiet "$TORCH" "$TORCHVISION" . "pyinstaller>=6.10"
if "$py" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "build: CUDA packages found in $VENV; remove it and build again" >&2
    exit 1
fi

echo "== the default model's ONNX graphs (features, feature maps), shipped so the frozen app never exports them"
rm -rf build/graphs
"$py" packaging/export_graphs.py build/graphs

rm -rf dist/Explorer
EXPLORER_TRIM=${EXPLORER_TRIM:-1} "$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/explorer.spec
cp packaging/linux/install.sh packaging/linux/explorer.desktop dist/Explorer/
built=$(date +%s)

echo "== self-test of the frozen app"
dist/Explorer/Explorer --self-test

echo "== a photo dropped on the window from another program (X11 drag and drop)"
if command -v xvfb-run >/dev/null && command -v xdotool >/dev/null && command -v import >/dev/null; then
    xvfb-run -a -s "-screen 0 1920x1080x24" "$py" packaging/xdnd_check.py dist/Explorer/Explorer \
        --screenshot build/frozen-app.png
else
    echo "skipped: needs xvfb-run, xdotool and ImageMagick's import (apt-get install xvfb xdotool imagemagick)"
fi

echo "== start-up time to a visible window"
"$py" packaging/startup_time.py dist/Explorer/Explorer

echo "== archive to hand out"
archive=dist/Explorer-$(uname -s | tr A-Z a-z)-$(uname -m).tar.gz
archive_started=$(date +%s)
tar -C dist -czf "$archive" Explorer
archived=$(date +%s)

echo "== summary"
echo "build time: $((built - started)) s (self-test and timing not included); archive $((archived - archive_started)) s"
mb() { echo "$(( $1 / 1000000 )) MB"; }
echo "bundle: $(mb "$(du -sb dist/Explorer | cut -f1)") in $(find dist/Explorer -type f | wc -l) files;" \
     "$archive $(mb "$(stat -c %s "$archive")")"
echo "torch: $("$py" -c 'import torch; print(torch.__version__)')"
