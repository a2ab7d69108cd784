"""Entry point of the frozen app: the same `explorer` command as from source.

No arguments (a double-click) or a folder opens the desktop app; `--self-test` checks the bundle;
the other commands are the command line (`Explorer index FOLDER`, ...).
"""

import multiprocessing
import sys

# UMAP's numba code caches its machine code; in a bundle, which has no source files to cache
# beside, numba uses its per-user folder (~/.cache/numba on Linux) and ignores NUMBA_CACHE_DIR.
from explorer.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a worker process of a library re-enters here, not main()
    sys.exit(main())
