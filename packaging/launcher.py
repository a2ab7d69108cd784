"""Entry point of the frozen app: the same `explorer` command as from source.

No arguments (a double-click) or a folder opens the desktop app; `--self-test` checks the bundle;
the other commands are the command line (`Explorer index FOLDER`, ...).
"""

import multiprocessing
import os
import sys

if getattr(sys, "frozen", False):
    from platformdirs import user_cache_dir

    # UMAP's numba functions cache their machine code next to their source files, which a bundle
    # has no writable place for: give numba a cache folder of its own.
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(user_cache_dir("Explorer"), "numba"))

from explorer.cli import main  # noqa: E402

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a worker process of a library re-enters here, not main()
    sys.exit(main())
