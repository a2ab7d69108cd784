#!/usr/bin/env bash
# Install Explorer for the current user (no root needed): the app under ~/.local/share/explorer-app,
# a menu entry with its icon, "Open With > Explorer" on folders in the file manager, and an
# `explorer` command in ~/.local/bin. Run it from the unpacked Explorer folder:
#
#   bash install.sh             install (or update) from this folder
#   bash install.sh --uninstall remove what install.sh added (indexes and settings stay)
#
# Never touches photos. Explorer does not become the default app for folders: it is offered in
# "Open With", the file manager keeps opening folders itself.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
app_dir=$data/explorer-app  # not $data/Explorer: that holds the indexes, which outlive the app
bin_link=$HOME/.local/bin/explorer
desktop_file=$data/applications/explorer.desktop
sizes="16 24 32 48 64 128 256 512"

refresh_caches() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$app_dir" "$desktop_file" "$data/icons/hicolor/scalable/apps/explorer.svg"
    for size in $sizes; do rm -f "$data/icons/hicolor/${size}x${size}/apps/explorer.png"; done
    [ -L "$bin_link" ] && rm -f "$bin_link"
    refresh_caches
    echo "Explorer removed. Its indexes ($data/Explorer) and settings were kept: delete them"
    echo "yourself if you no longer need them."
    exit 0
fi

if [ ! -x "$here/Explorer" ]; then
    echo "install.sh: run it from the unpacked Explorer folder (no Explorer executable in $here)" >&2
    exit 1
fi

if [ "$here" != "$app_dir" ]; then  # copy (replacing an older version), so the download can go
    rm -rf "$app_dir.new"
    mkdir -p "$(dirname "$app_dir")"
    cp -a "$here" "$app_dir.new"
    rm -rf "$app_dir"
    mv "$app_dir.new" "$app_dir"
fi

icons=$app_dir/_internal/icons
for size in $sizes; do
    install -Dm644 "$icons/png/explorer-$size.png" "$data/icons/hicolor/${size}x${size}/apps/explorer.png"
done
install -Dm644 "$icons/explorer.svg" "$data/icons/hicolor/scalable/apps/explorer.svg"

mkdir -p "$data/applications"
exec_path=${app_dir// /\\ }/Explorer  # the Exec key escapes spaces with a backslash
sed "s|@EXEC@|$exec_path|" "$app_dir/explorer.desktop" > "$desktop_file"
chmod 644 "$desktop_file"

mkdir -p "$(dirname "$bin_link")"
ln -sfn "$app_dir/Explorer" "$bin_link"
refresh_caches

echo "Explorer installed in $app_dir"
echo "Start it from your applications menu, with 'explorer' in a terminal, or on a folder with"
echo "right-click > Open With > Explorer."
