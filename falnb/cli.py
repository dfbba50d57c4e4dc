"""The ``falnb`` command: ``falnb serve`` runs the local fal-compatible server.

Subcommands are argparse subparsers, each added by one ``_add_<name>`` function, so new ones
(``demo``, ``lock``) slot in beside ``serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from falnb._version import __version__

__all__ = ["build_parser", "main"]


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the local fal-compatible server in the foreground",
        description="Run falnb's fal-compatible server (run, queue, storage, realtime) "
        "until Ctrl-C. Point falnb or fal-client at the URLs it prints.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--key", default=None, help="the key clients must send (default: random)")
    serve.add_argument(
        "--concurrency", type=int, default=2, help="queue requests run at once (default 2)"
    )
    serve.add_argument(
        "--faults",
        action="store_true",
        help="for tests: honour x-falnb-fault headers on authenticated requests",
    )
    serve.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (dotted name, or a .py file) first, so its @falnb.local.app "
        "functions are served too; repeatable",
    )
    serve.add_argument(
        "--list", action="store_true", help="list the endpoints it serves, then exit"
    )
    serve.set_defaults(func=_serve)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="run real jobs through the default target and print them",
        description="Run a few real jobs (echo, a queued job with logs, a stream, an image) "
        "through the default target: the embedded local server unless FAL_KEY is set.",
    )
    demo.add_argument(
        "--notebook", type=Path, default=None, help="then run this notebook in a fresh kernel"
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="where outputs go (demo-output)"
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from falnb._demo import main as demo  # noqa: PLC0415 - only this command needs it

    return demo(out, notebook=args.notebook, out_dir=args.out)


def _add_lock(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lock = commands.add_parser(
        "lock",
        help="inspect, verify and clean up recorded fal calls",
        description="The lock file (falnb.lock beside the notebooks) records every fal call's "
        "seed, request id and result; media live in falnb's cache.",
    )
    actions = lock.add_subparsers(dest="lock_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="list the entries of a lock file")
    show.add_argument("lockfile", nargs="?", default=None, help="default: ./falnb.lock")
    show.set_defaults(func=_lock_show)
    verify = actions.add_parser(
        "verify",
        help="re-run a notebook offline (record=none) and compare its outputs",
        description="Execute NOTEBOOK in a fresh kernel with FALNB_RECORD=none; fail if any "
        "call misses the lock or any output differs from the saved one.",
    )
    verify.add_argument("notebook", help="the .ipynb file")
    verify.add_argument("--timeout", type=float, default=600, help="per cell, seconds")
    verify.set_defaults(func=_lock_verify)
    gc = actions.add_parser(
        "gc",
        help="delete cached media no lock file refers to",
        description="Keep the media of every lock file that used the cache (and those named); "
        "delete the rest.",
    )
    gc.add_argument("lockfiles", nargs="*", help="more lock files whose media to keep")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    gc.set_defaults(func=_lock_gc)


def _lock_show(args: argparse.Namespace, out: TextIO) -> int:
    from falnb.repro import LockFile, default_lock_path  # noqa: PLC0415

    lock = LockFile(args.lockfile or default_lock_path())
    if not lock.path.exists():
        print(f"falnb: no lock file at {lock.path}", file=sys.stderr)
        return 1
    entries = lock.entries()
    out.write(f"{lock.path}: {len(entries)} entries\n")
    rows = sorted(entries.items(), key=lambda item: (item[1].time, item[0]))
    for fp, e in rows:
        seed = "-" if e.seed is None else str(e.seed)
        out.write(
            f"{fp[:12]}  {e.status:<9}  {e.endpoint}  seed={seed}  "
            f"request={e.request_id or '-'}  media={len(e.media)}  {e.time}\n"
        )
    return 0


def _lock_verify(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path  # noqa: PLC0415

    from falnb.repro.verify import verify_notebook  # noqa: PLC0415

    notebook = Path(args.notebook)
    if not notebook.is_file():
        print(f"falnb: no notebook at {notebook}", file=sys.stderr)
        return 2
    problems = verify_notebook(notebook, timeout=args.timeout)
    out.writelines(f"FAIL {problem}\n" for problem in problems)
    verdict = "reproduces from the lock" if not problems else f"{len(problems)} problem(s)"
    out.write(f"{notebook}: {verdict}\n")
    return 1 if problems else 0


def _lock_gc(args: argparse.Namespace, out: TextIO) -> int:
    from falnb.repro import LockFile, LockFileError, MediaStore  # noqa: PLC0415

    store = MediaStore()
    locks = [*store.registered_locks(), *args.lockfiles]
    try:
        keep = {m.sha256 for p in locks for e in LockFile(p).entries().values() for m in e.media}
    except LockFileError as exc:
        # Deleting media while a lock cannot be read could delete what it refers to.
        print(f"falnb: not collecting: {exc}", file=sys.stderr)
        return 1
    doomed = [sha for sha in store.objects() if sha not in keep]
    size = sum(store.object_path(sha).stat().st_size for sha in doomed)
    if not args.dry_run:
        store.gc(keep)
    verb = "would delete" if args.dry_run else "deleted"
    out.write(
        f"{verb} {len(doomed)} media file(s), {size} bytes; kept {len(keep)} "
        f"referenced by {len(locks)} lock file(s) in {store.root}\n"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falnb", description="fal.ai's generative-model API, native in Jupyter."
    )
    parser.add_argument("--version", action="version", version=f"falnb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    _add_demo(commands)
    _add_lock(commands)
    return parser


def _import_apps(modules: Sequence[str]) -> None:
    """Import user modules so their ``@falnb.local.app`` decorators register their endpoints."""
    import importlib  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    # Like `python -m`, resolve dotted names from the current directory first.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    for module in modules:
        path = Path(module)
        if module.endswith(".py") or path.is_file():
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise SystemExit(f"falnb serve: cannot import {module}")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = loaded
            spec.loader.exec_module(loaded)
        else:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module.startswith(exc.name):
                    raise  # the module itself failed to import one of its dependencies
                raise SystemExit(
                    f"falnb serve: no module named {module!r} "
                    "(run from the directory that contains it, or pass a .py path)"
                ) from exc


def _list_endpoints(out: TextIO) -> int:
    from falnb.local.apps import default_registry  # noqa: PLC0415 - only this command needs it

    endpoints = list(default_registry())
    width = max(len(e.endpoint_id) for e in endpoints)
    out.writelines(f"{e.endpoint_id:<{width}}  {e.description}\n" for e in endpoints)
    return 0


def _banner(base_url: str, key: str, out: TextIO) -> None:
    from falnb._settings import Target  # noqa: PLC0415

    target = Target.local(base_url, key)
    urls = {
        "run": target.run_url,
        "queue": target.queue_url,
        "rest": target.rest_url,
        "cdn": target.cdn_url,
        "realtime": target.realtime_url,
    }
    lines = [f"falnb local server {__version__}, serving until Ctrl-C", ""]
    lines += [f"  {name:<9}{url}" for name, url in urls.items()]
    lines += [f"  {'key':<9}{key}", "", "Point falnb at it (shell):", ""]
    lines.append(f"  export FALNB_TARGET=fal FAL_KEY='{key}'")
    lines += [f"  export FALNB_{name.upper()}_URL={url}" for name, url in urls.items()]
    lines += ["", "Point fal-client at it (Python, before its first call):", ""]
    lines += [
        "  import fal_client.client as C",
        f'  C.RUN_URL_FORMAT = "{target.run_url}/"',
        f'  C.QUEUE_URL_FORMAT = "{target.queue_url}/"',
        f'  C.REALTIME_URL_FORMAT = "{target.realtime_url}/"',
        f'  C.REST_URL = "{target.rest_url}"',
        f'  C.CDN_URL = "{target.cdn_url}"',
        f"  client = fal_client.SyncClient(key='{key}')",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    _import_apps(args.app)
    if args.list:
        return _list_endpoints(out)
    from falnb.local import LocalServer  # noqa: PLC0415 - keep `falnb --version` fast

    server = LocalServer(
        key=args.key,
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        faults=args.faults,
    )
    _banner(server.base_url, server.key, out)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``falnb`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args, out or sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
