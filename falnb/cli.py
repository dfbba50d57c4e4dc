"""The ``falnb`` command: ``falnb serve`` runs the local fal-compatible server.

Subcommands are argparse subparsers, each added by one ``_add_<name>`` function, so new ones
(``demo``, ``lock``) slot in beside ``serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from falnb._version import __version__

if TYPE_CHECKING:
    from falnb.local import LocalServer

__all__ = ["KEY_ENV", "build_parser", "main"]

#: Where ``falnb serve`` reads its key when neither --key nor --key-file is given. Not
#: FAL_KEY: that is the user's fal cloud key, which the banner must never print.
KEY_ENV = "FALNB_SERVE_KEY"


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the local fal-compatible server in the foreground",
        description="Run falnb's fal-compatible server (run, queue, storage, realtime) "
        "until Ctrl-C. Point falnb or fal-client at the URLs it prints.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default 127.0.0.1; any other makes the key all that protects it)",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument(
        "--key",
        default=None,
        help=f"the key clients must send (visible in `ps`: prefer ${KEY_ENV} or --key-file; "
        "default: random)",
    )
    keys.add_argument(
        "--key-file", type=Path, default=None, metavar="PATH", help="read the key from PATH"
    )
    serve.add_argument(
        "--concurrency", type=int, default=2, help="queue requests run at once (default 2)"
    )
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=None,
        metavar="MB",
        # The default lives in falnb.local.bodies, not imported here to keep the CLI fast.
        help="largest JSON body of a run, stream or queue call, in MiB; larger ones "
        "answer 413 (default 32)",
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
        "--notebook",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="then run these notebooks, each in a fresh kernel, saving them and their HTML",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="where outputs go (demo-output)"
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from falnb._demo import main as demo  # only this command needs it

    return demo(out, notebooks=args.notebook, out_dir=args.out)


def _add_lock(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lock = commands.add_parser(
        "lock",
        help="inspect, verify and clean up recorded fal calls",
        description="The lock file (falnb.lock beside the notebooks) records every fal call's "
        "seed, request id and result; its media live in falnb-media/ beside it (up to a size "
        "cap) and in falnb's cache.",
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
        help="delete media no lock file refers to (the cache's, and falnb-media/'s)",
        description="Keep the media of every lock file that used the cache, of ./falnb.lock "
        "and of those named; delete the rest, in the cache and in the falnb-media/ folder "
        "beside each of those locks.",
    )
    gc.add_argument("lockfiles", nargs="*", help="more lock files whose media to keep")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    gc.set_defaults(func=_lock_gc)


def _lock_show(args: argparse.Namespace, out: TextIO) -> int:
    from falnb.client.errors import FalError
    from falnb.repro import LockFile, default_lock_path

    lock = LockFile(args.lockfile or default_lock_path())
    if not lock.path.exists():
        print(f"falnb: no lock file at {lock.path}", file=sys.stderr)
        return 1
    try:
        entries = lock.entries()
    except FalError as exc:  # LockFileError, LockWriteError: one line naming path and fix
        print(f"falnb: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ArithmeticError) as exc:  # a directory, not UTF-8, 1e999...
        print(f"falnb: cannot read the lock file {lock.path}: {_reason(exc)}", file=sys.stderr)
        return 1
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
    from pathlib import Path

    from falnb.repro.verify import verify_notebook

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
    from falnb.repro import LockFileError, MediaStore, default_lock_path
    from falnb.repro.gc import collect_garbage

    try:
        # The working directory's lock counts too: a fresh clone never registered it.
        done = collect_garbage(
            MediaStore(), [default_lock_path(), *args.lockfiles], dry_run=args.dry_run
        )
    except LockFileError as exc:
        # Deleting media while a lock cannot be read could delete what it refers to.
        print(f"falnb: not collecting: {exc}", file=sys.stderr)
        return 1
    out.write(done.summary() + "\n")
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
    import importlib
    import importlib.util
    from pathlib import Path

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
    from falnb.local.apps import default_registry  # only this command needs it

    endpoints = list(default_registry())
    width = max(len(e.endpoint_id) for e in endpoints)
    out.writelines(f"{e.endpoint_id:<{width}}  {e.description}\n" for e in endpoints)
    return 0


@dataclass(frozen=True)
class _Key:
    """The server key and how the banner may refer to it (never printing one it was given
    through the environment or a file)."""

    value: str | None  # None: let the server pick a random one
    source: str = ""  # where it was read ("" = the command line: the banner prints it)
    shell: str = ""  # how the banner's shell and Python lines refer to it
    python: str = ""


def _server_key(args: argparse.Namespace) -> _Key:
    if args.key is not None:
        key = _Key(args.key)
    elif args.key_file is not None:
        path = args.key_file
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise _CommandError(f"cannot read the key file {path}: {_reason(exc)}") from None
        shell = f'"$(cat {shlex.quote(str(path))})"'
        key = _Key(text, str(path), shell, f"open({str(path)!r}).read().strip()")
    elif os.environ.get(KEY_ENV) is not None:
        key = _Key(os.environ[KEY_ENV], f"${KEY_ENV}", f'"${KEY_ENV}"', f"os.environ[{KEY_ENV!r}]")
    else:
        return _Key(None)
    if not key.value or not key.value.strip():
        raise _CommandError("the key is blank; give a non-empty --key, --key-file or " + KEY_ENV)
    if key.value != key.value.strip():
        raise _CommandError("the key starts or ends with whitespace, which clients cannot send")
    return key


def _banner(base_url: str, key: _Key, server_key: str, out: TextIO) -> None:
    from falnb._settings import Target

    target = Target.local(base_url, server_key)
    shell_key = key.shell or f"'{server_key}'"
    python_key = key.python or repr(server_key)
    urls = {
        "run": target.run_url,
        "queue": target.queue_url,
        "rest": target.rest_url,
        "cdn": target.cdn_url,
        "realtime": target.realtime_url,
    }
    lines = [f"falnb local server {__version__}, serving until Ctrl-C", ""]
    lines += [f"  {name:<9}{url}" for name, url in urls.items()]
    shown = f"not shown (read from {key.source})" if key.source else server_key
    lines += [f"  {'key':<9}{shown}", ""]
    lines += ["Point falnb at it (shell):", ""]
    lines.append(f"  export FALNB_TARGET=fal FAL_KEY={shell_key}")
    lines += [f"  export FALNB_{name.upper()}_URL={url}" for name, url in urls.items()]
    lines += ["", "Point fal-client at it (Python, before its first call):", ""]
    lines += ["  import os"] if python_key.startswith("os.") else []
    lines += [
        "  import fal_client.client as C",
        f'  C.RUN_URL_FORMAT = "{target.run_url}/"',
        f'  C.QUEUE_URL_FORMAT = "{target.queue_url}/"',
        f'  C.REALTIME_URL_FORMAT = "{target.realtime_url}/"',
        f'  C.REST_URL = "{target.rest_url}"',
        f'  C.CDN_URL = "{target.cdn_url}"',
        f"  client = fal_client.SyncClient(key={python_key})",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


class _CommandError(Exception):
    """A user's mistake on the command line: one line on stderr, exit status 2."""


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_serve_args(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise _CommandError(f"--port must be 0..65535 (0 picks a free one), not {args.port}")
    if args.concurrency < 1:
        raise _CommandError(f"--concurrency must be at least 1, not {args.concurrency}")
    if args.max_body_mb is not None and not args.max_body_mb > 0:
        raise _CommandError(f"--max-body-mb must be positive, not {args.max_body_mb:g}")


def _start_server(args: argparse.Namespace, key: str | None) -> LocalServer:
    from falnb.local import LocalServer  # keep `falnb --version` fast
    from falnb.local.bodies import DEFAULT_MAX_BODY_BYTES

    mb = args.max_body_mb
    try:
        return LocalServer(
            key=key,
            host=args.host,
            port=args.port,
            concurrency=args.concurrency,
            faults=args.faults,
            max_body_bytes=DEFAULT_MAX_BODY_BYTES if mb is None else int(mb * 2**20),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _CommandError(
                f"port {args.port} on {args.host} is in use; pick another --port "
                "(or --port 0 for a free one)"
            ) from None
        raise _CommandError(f"cannot listen on {args.host}:{args.port}: {_reason(exc)}") from None


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    _check_serve_args(args)
    key = _server_key(args)
    _import_apps(args.app)
    if args.list:
        return _list_endpoints(out)
    server = _start_server(args, key.value)
    if not _is_loopback(args.host):
        print(
            f"falnb serve: warning: listening on {args.host}, beyond this machine's loopback: "
            "anyone who can reach it can call the server, and the key is all that protects it",
            file=sys.stderr,
        )
    _banner(server.base_url, key, server.key, out)
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
    try:
        return int(args.func(args, out or sys.stdout))
    except _CommandError as exc:
        print(f"falnb {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
