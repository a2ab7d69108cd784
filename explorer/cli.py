"""explorer: the headless command line over explorer.core.

Progress goes to stderr; results (and the one-line summary of `index`) go to stdout, so scripts
can pipe them.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .core import backends, catalog, images
from .core.backends import BackendUnavailable
from .core.backbones import DEFAULT_MODEL, UnknownModel, WeightsUnavailable, get_spec, list_specs
from .core.cluster import INSTALL_HINT, ClusterError, RayCluster, import_ray
from .core.store import CollectionError, folder_dir, indexed_models
from .core.tasks import CancelToken
from .logs import (DEFAULT_LEVEL, LEVEL_OPTION, LEVELS, log_file, log_to_stderr, take_level_option,
                   warnings_to_stderr)


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


class TqdmProgress:
    """Adapts core's progress(done, total, message) to a tqdm bar on stderr."""

    def __init__(self, quiet: bool = False):
        self.bar = None
        self.quiet = quiet

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if total and (self.bar is None or self.bar.total != total):
            self.close()
            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
        if self.bar is None:
            print(message, file=sys.stderr)
            return
        self.bar.set_description(message.split(" ")[0])
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _folder(path: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"not a folder: {path}")
    return folder.resolve()


@contextlib.contextmanager
def interruptible(quiet: bool = False):
    """(cancel token, progress bar on stderr) for a long core job: Ctrl+C sets the token, so the
    job stops at its next check and keeps what it has done; both are undone on leaving."""
    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())
    progress = TqdmProgress(quiet)
    try:
        yield token, progress
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)


def cmd_index(args: argparse.Namespace) -> int:
    cluster = None
    if args.ray:
        import_ray()  # before the scan: a missing Ray says so at once
        cluster = RayCluster(args.ray, workers=args.ray_workers, gpus_per_worker=args.ray_worker_gpus)
    report = _run_index(_folder(args.folder), args.model, args.backend, quiet=args.quiet,
                        batch_size=args.batch_size, workers=args.workers, cluster=cluster)
    print(report.summary())
    return 130 if report.cancelled else 0


def _run_index(folder: Path, model: str, backend: str, quiet: bool = False, batch_size: int = 32,
               workers: int | None = None, cluster=None):
    from .core.indexer import index_folder

    with interruptible(quiet) as (token, progress):
        report = index_folder(folder, model, progress=progress, cancelled=token, batch_size=batch_size,
                              decode_workers=workers, backend=backend, cluster=cluster)
        if report.backend:
            progress.close()
            print(f"forward pass: {report.backend}", file=sys.stderr)
        return report


def _open_index(folder: Path, model: str | None, backend: str):
    from .core.search import SearchIndex, default_model_for

    model = model or default_model_for(folder)
    if model not in indexed_models(folder):
        print(f"{folder} is not indexed with {model} yet; indexing it first", file=sys.stderr)
        report = _run_index(folder, model, backend)
        print(report.summary(), file=sys.stderr)
        if report.cancelled:
            raise UserError("indexing was cancelled")
    return SearchIndex.open(folder, model)


def _imported(folder: str | None) -> list[str]:
    """The folder's representations that no registered model computes (explorer import)."""
    path = Path(folder).expanduser() if folder else None
    if path is None or not path.is_dir():
        return []
    known = {spec.name for spec in list_specs()}
    return [m for m in indexed_models(path) if m not in known]


def _indexed_vectors(index, queries: list[str]):
    """The stored vectors of query images that the index holds (an imported representation has no
    model to embed any other image with)."""
    import numpy as np

    rows = []
    for query in queries:
        row = index.row_of(Path(query).expanduser())
        if row is None:
            raise UserError(f"{index.collection.model!r} was imported, and Explorer cannot run its model: "
                            f"a query must be an image of {index.folder} that it holds, not {query}")
        rows.append(row)
    return index.vectors_of(np.asarray(rows))


def _region_vectors(model, args: argparse.Namespace):
    """The query images' regions (--region), each as a query vector of its own."""
    import numpy as np

    from .core.explain import parse_region, region_vector

    try:
        region = parse_region(args.region)
        return np.stack([region_vector(model, Path(q).expanduser(), region, args.region_method) for q in args.query])
    except ValueError as err:
        raise UserError(str(err)) from None
    except images.ImageError as err:
        raise UserError(f"cannot read query image: {err}") from None


def cmd_search(args: argparse.Namespace) -> int:
    from .core.embed import embed_query_images, mean_query
    from .core.backbones import load_model

    folder = _folder(args.folder)
    index = _open_index(folder, args.model, args.backend)
    try:
        if index.collection.model in _imported(args.folder):
            if args.region:
                raise UserError(f"--region needs a model Explorer can run; {index.collection.model!r} was imported")
            vectors = _indexed_vectors(index, args.query)
        elif args.region:
            vectors = _region_vectors(load_model(index.collection.model, backend=args.backend), args)
        else:
            model = load_model(index.collection.model, backend=args.backend)
            try:
                vectors = embed_query_images(model, [str(Path(q).expanduser()) for q in args.query])
            except images.ImageError as err:
                raise UserError(f"cannot read query image: {err}") from None
        hits = index.search(mean_query(vectors), args.k, exact=args.exact or None)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"results": [{"path": str(h.path), "score": h.score} for h in hits]}))
    else:
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:3d}  {hit.score:.4f}  {hit.path}")
    return 0


def cmd_neighbours(args: argparse.Namespace) -> int:
    index = _open_index(_folder(args.folder), args.model, args.backend)
    try:
        for path, hits in index.neighbours(args.k, exact=args.exact or None):
            if args.json:
                neighbours = [{"path": str(h.path), "score": h.score} for h in hits]
                print(json.dumps({"path": str(path), "neighbours": neighbours}))
            else:
                print(f"{path}\t" + "\t".join(f"{h.path}:{h.score:.4f}" for h in hits))
    finally:
        index.close()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .core.analysis import evaluate, labels_of

    if args.k < 1:
        raise UserError("--k must be at least 1")
    index = _open_index(_folder(args.folder), args.model, args.backend)
    try:
        with interruptible(quiet=args.json) as (token, progress):  # O(N^2): may take a while
            result = evaluate(index.vectors, labels_of(index.paths), k=args.k, progress=progress,
                              cancelled=token)
    finally:
        index.close()
    if result is None:
        print("explorer: eval cancelled", file=sys.stderr)
        return 130
    if not result.overall.queries:
        raise UserError(f"{index.folder} has no labels to evaluate: eval needs subfolders "
                        "(labels) holding at least two images each")
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    precision = f"precision@{args.k}"
    width = max(len("overall"), *(len(name) for name in result.labels))
    print(f"{'label':{width}s}  {'images':>6s}  {'mAP':>6s}  {precision:>{len(precision)}s}  {'recall@1':>8s}")
    rows = [*result.labels.items(), ("overall", result.overall)]
    for name, s in rows:
        if name == "overall":
            print("-" * (width + len(precision) + 30))
        print(f"{name:{width}s}  {s.queries:6d}  {s.mean_average_precision:6.3f}  "
              f"{s.precision_at_k:{len(precision)}.3f}  {s.recall_at_1:8.3f}")
    if result.singletons:
        print(f"not evaluated (one image): {', '.join(result.singletons)}", file=sys.stderr)
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    from .core.duplicates import duplicate_groups

    index = _open_index(_folder(args.folder), args.model, args.backend)
    try:
        groups = duplicate_groups(index, args.threshold)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"groups": [[str(p) for p in group] for group in groups]}))
        return 0
    print(f"{len(groups)} group(s) of near-duplicates at similarity >= {args.threshold}",
          file=sys.stderr)
    print("\n\n".join("\n".join(str(p) for p in group) for group in groups))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .core.search import default_model_for
    from .core.store import Collection

    folder = _folder(args.folder)
    models = indexed_models(folder)
    if not models:
        raise UserError(f"{folder} has not been indexed yet: run  explorer index {folder}")
    model = args.model or default_model_for(folder)
    collection = Collection.open_existing(folder, model)
    try:
        collection.verify_vectors()  # a damaged shard is an error naming it, not a silent 'images 14'
        meta = collection.meta()
        skipped = collection.skipped()
        info = {
            "folder": str(folder),
            "model": model,
            "weights_sha256": meta.get("weights_sha256"),
            "preprocessing": meta.get("preprocessing"),
            "images": collection.count("ok"),
            "dimension": collection.dim,
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
            "stored_at": str(collection.dir),
            "size_on_disk": collection.size_on_disk(),
            "thumbnails_size_on_disk": (collection.dir.parent / "thumbs.sqlite").stat().st_size,
            "other_models": [m for m in models if m != model],
        }
    finally:
        collection.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"folder          {info['folder']}")
    print(f"model           {model}")
    print(f"weights sha256  {info['weights_sha256']}")
    print(f"preprocessing   {info['preprocessing']}")
    print(f"images          {info['images']}")
    print(f"dimension       {info['dimension']}")
    print(f"stored at       {info['stored_at']}")
    print(f"size on disk    {_human(info['size_on_disk'])} (+ {_human(info['thumbnails_size_on_disk'])} thumbnails)")
    if info["other_models"]:
        print(f"also indexed    {', '.join(info['other_models'])}")
    print(f"skipped         {len(skipped)}")
    for s in skipped:
        print(f"  {s.path}: {s.reason}")
    return 0


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def cmd_check(args: argparse.Namespace) -> int:
    from .core.check import check_folder, drop_caches

    folder = _folder(args.folder)
    if not indexed_models(folder):
        raise UserError(f"{folder} has not been indexed yet: run  explorer index {folder}")
    damaged = check_folder(folder)
    for damage in damaged:
        print(damage)
    if not damaged:
        print(f"the collection of {folder} is sound ({', '.join(indexed_models(folder))})")
        return 0
    if not args.repair:
        print(f"{len(damaged)} damaged file(s); `explorer check --repair {folder}` (or `explorer index "
              f"{folder}`) repairs them", file=sys.stderr)
        return 1
    drop_caches(damaged)
    for model in indexed_models(folder):
        print(_run_index(folder, model, args.backend).summary())
    left = check_folder(folder)
    for damage in left:
        print(f"still damaged: {damage}")
    return 1 if left else 0


def cmd_import(args: argparse.Namespace) -> int:
    from .core.exchange import EmbeddingsError, import_embeddings

    sources = [Path(s).expanduser() for s in args.embeddings]
    name = args.name or sources[0].stem
    try:
        report = import_embeddings(_folder(args.folder), sources, name, args.path_column, args.vector_column)
    except EmbeddingsError as err:
        raise UserError(f"{err}; nothing was imported") from None
    for path in report.missing[:10]:
        print(f"skipped (not in the folder): {path}", file=sys.stderr)
    if len(report.missing) > 10:
        print(f"... and {len(report.missing) - 10} more", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_export_embeddings(args: argparse.Namespace) -> int:
    from .core.exchange import EmbeddingsError, export_embeddings

    try:
        rows = export_embeddings(_folder(args.folder), Path(args.out).expanduser(), args.model)
    except EmbeddingsError as err:
        raise UserError(str(err)) from None
    print(f"wrote {rows} rows to {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Which parts of IMAGE make it similar to the query: each feature-map cell's exact share."""
    from .core.analysis import rocchio
    from .core.embed import embed_query_images
    from .core.explain import explain, overlay_png
    from .core.backbones import load_model

    model = load_model(args.model, backend=args.backend)
    try:
        positives = embed_query_images(model, [Path(q).expanduser() for q in args.query])
        negatives = embed_query_images(model, [Path(n).expanduser() for n in args.negative]) if args.negative else None
        explanation = explain(args.model, Path(args.image).expanduser(), rocchio(positives, negatives),
                              model.backend)
    except images.ImageError as err:
        raise UserError(f"cannot read an image: {err}") from None
    if args.out:
        overlay_png(Path(args.image).expanduser(), explanation, Path(args.out).expanduser())
    if args.json:
        grid = explanation.grid
        print(json.dumps({"similarity": explanation.similarity, "shape": list(grid.shape),
                          "grid": [[float(v) for v in row] for row in grid], "model": args.model,
                          "pooling": explanation.pooling}))
    else:
        print(f"similarity {explanation.similarity:.4f}: the sum of {explanation.grid.size} shares "
              f"({explanation.grid.shape[0]}x{explanation.grid.shape[1]}, {explanation.pooling.upper()} pooling)"
              + (f"; heatmap written to {args.out}" if args.out else ""))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    print(f"{'name':20s} {'dim':>5s}  {'offline':8s} description")
    for spec in list_specs():
        offline = "yes" if spec.is_available_offline() else "download"
        default = "  [default]" if spec.name == DEFAULT_MODEL else ""
        print(f"{spec.name:20s} {spec.dim:5d}  {offline:8s} {spec.description}{default}")
    print(f"\n{'backend':12s} {'version':12s} used by auto")
    order = backends.preference(backends.AUTO)
    for name in backends.BACKENDS:
        version = backends.version(name) if backends.is_installed(name) else None
        rank = f"{order.index(name) + 1}" if name in order else "-"
        hint = "" if version else f"  ({backends.install_hint(name)})"
        print(f"{name:12s} {version or 'not installed':12s} {rank}{hint}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .resources import sample_folder

    print(sample_folder())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Index the bundled sample collection and search it with one of its photos."""
    from .resources import sample_folder

    folder = sample_folder()
    query = folder / "cat" / "cat-original.jpg"
    print(f"Sample collection: {folder}")
    print(f"Query: {query}\n")
    model = ["--model", args.model] if args.model else []
    _, commands = build_parser()
    return cmd_search(commands["search"].parse_args([str(folder), "--query", str(query), *model,
                                                     "--backend", args.backend]))


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line's parser, and each command's own parser by name (aliases included)."""
    parser = argparse.ArgumentParser(
        prog="explorer", description="Index a photo folder with a CNN and search it by example."
    )
    parser.add_argument("--self-test", action="store_true",
                        help="check the installation: index the sample offscreen, query it, exit 0 if all works")
    parser.add_argument(LEVEL_OPTION, choices=LEVELS, default=None,  # taken out of argv by main
                        help=f"detail of the log: the app's log file ({log_file()}), or stderr for a command")
    parser.set_defaults(folder=None, model=None)  # what main reads of every command
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The arguments that several commands share, declared once (argparse parents).
    folder = _parent(lambda p: p.add_argument("folder", help="the photo folder"))
    as_json = _parent(lambda p: p.add_argument("--json", action="store_true", help="print JSON instead of text"))
    new_model = _parent(lambda p: p.add_argument("--model", default=DEFAULT_MODEL,
                                                 help="representation (see `explorer models`; default %(default)s)"))
    indexed_model = _parent(lambda p: p.add_argument(
        "--model", default=None, help="representation (see `explorer models`; default: the folder's last indexed)"))
    backend = _parent(lambda p: p.add_argument(
        "--backend", default=backends.AUTO, choices=(backends.AUTO, *backends.BACKENDS),
        help="what runs the forward pass (default auto: the fastest installed); every backend makes "
             "the same vectors"))

    def command(name: str, func, summary: str, parents=(), description: str | None = None,
                **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=description or summary, parents=list(parents), **kwargs)
        p.set_defaults(func=func)
        return p

    p = command("index", cmd_index, "build or update the collection of a folder", (folder, new_model, backend))
    p.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="embed on a Ray cluster: ADDRESS is a running one (auto, host:6379, "
                        "ray://host:10001), none a local Ray instance; needs " + INSTALL_HINT)
    p.add_argument("--ray-workers", type=_positive, default=None, metavar="N",
                   help="model processes on the cluster (default: one per CPU)")
    p.add_argument("--ray-worker-gpus", type=float, default=0.0, metavar="G",
                   help="GPUs per worker (default 0: CPU workers)")

    p = command("search", cmd_search, "the images most similar to one or more example images",
                (folder, as_json, indexed_model, backend))
    p.add_argument("--query", action="append", required=True, metavar="IMAGE",
                   help="example image (repeat to average several examples)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--exact", action="store_true", help="exact search instead of HNSW")
    p.add_argument("--region", metavar="X0,Y0,X1,Y1",
                   help="query by this part of each query image (fractions of its width and height)")
    p.add_argument("--region-method", choices=("crop", "pool"), default="crop",
                   help="crop: embed the region as an image (default: better and faster, "
                        "bench/bench_regions.py); pool: pool the model's feature-map cells of it")

    p = command("neighbours", cmd_neighbours, "every image with its nearest neighbours",
                (folder, as_json, indexed_model, backend), aliases=["neighbors"],
                description="every image with its nearest neighbours (--json: one JSON object per line)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--exact", action="store_true", help="exact search instead of HNSW")

    p = command("eval", cmd_eval, "retrieval quality per label (subfolder): mAP, precision@k, recall@1",
                (folder, as_json, indexed_model, backend))
    p.add_argument("--k", type=int, default=10, help="k of precision@k (default 10)")

    p = command("duplicates", cmd_duplicates, "groups of near-duplicate images", (folder, as_json, indexed_model, backend))
    p.add_argument("--threshold", type=float, default=0.95, help="cosine similarity (default 0.95)")

    command("info", cmd_info, "what is indexed, where, and which files were skipped", (folder, as_json, indexed_model))

    p = command("import", cmd_import, "import embeddings made elsewhere (Parquet; clip-retrieval's npy + Parquet) "
                                      "as a representation of a folder", (folder,))
    p.add_argument("embeddings", nargs="+", help="Parquet files, folders of them, or a clip-retrieval output folder")
    p.add_argument("--name", help="the representation's name (default: the first file's name)")
    p.add_argument("--path-column", help=f"default: the first of {', '.join(('path', 'image_path', 'filepath'))}, ...")
    p.add_argument("--vector-column", help="default: the first of vector, embedding, embeddings, emb, ...")

    p = command("export-embeddings", cmd_export_embeddings, "write a folder's vectors and map positions to Parquet",
                (folder, indexed_model))
    p.add_argument("out", metavar="OUT.parquet")

    p = command("explain", cmd_explain, "why an image is similar to a query: each region's exact share, as a heatmap",
                (as_json, new_model, backend),
                description="why an image is similar to a query: each region's exact share, as a heatmap "
                            "(--json: similarity, grid (rows of floats) and its shape)")
    p.add_argument("image", help="the image to explain")
    p.add_argument("--query", action="append", required=True, metavar="IMAGE", help="example image (repeatable)")
    p.add_argument("--negative", action="append", default=[], metavar="IMAGE", help="negative example (repeatable)")
    p.add_argument("--out", metavar="PNG", help="write the image with the heatmap over it and a colour bar")

    p = command("check", cmd_check, "list the damaged files of a folder's collection (and repair them)",
                (folder, backend))
    p.add_argument("--repair", action="store_true", help="repair what is damaged: embed again what was lost")

    command("models", cmd_models, "available backbones and inference backends")
    command("demo", cmd_demo, "index the bundled sample collection and search it", (indexed_model, backend))
    command("sample", cmd_sample, "print the path of the bundled sample collection")
    return parser, sub.choices


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return int(text)


def _parent(declare) -> argparse.ArgumentParser:
    """A parent parser holding the arguments `declare(parser)` adds, for commands to share."""
    parent = argparse.ArgumentParser(add_help=False)
    declare(parent)
    return parent


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--self-test"]:
        from .selftest import main as self_test

        return self_test()
    from .core.layout_worker import WORKER_FLAG, worker_main  # light: numpy only

    if argv[:1] == [WORKER_FLAG]:  # the frozen app starting its own map process
        return worker_main()
    argv, log_level = take_level_option(argv)
    parser, commands = build_parser()
    first = argv[0] if argv else ""
    if first not in commands and not first.startswith("-"):  # no command, or a folder: the desktop app
        if first not in ("", "open") and not Path(first).exists():
            # A mistyped command must not open a window that a script would wait on.
            close = difflib.get_close_matches(first, sorted(commands), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; the commands: {', '.join(sorted(commands))}"
            print(f"explorer: error: '{first}' is neither a command nor a folder{hint}", file=sys.stderr)
            return 2
        from .app import main as app_main

        return app_main(argv, log_level=log_level or DEFAULT_LEVEL)
    args = parser.parse_args(argv)
    if log_level:
        log_to_stderr(log_level)
    else:
        warnings_to_stderr()
    try:
        if args.model and args.model not in _imported(args.folder):
            get_spec(args.model)
        return args.func(args)
    except (UserError, catalog.FolderError, WeightsUnavailable, CollectionError, UnknownModel,
            BackendUnavailable, ClusterError) as err:
        print(f"explorer: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `explorer neighbours ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
