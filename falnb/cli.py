"""The ``falnb`` command: ``falnb serve`` runs the local fal-compatible server.

Subcommands are argparse subparsers, each added by one ``_add_<name>`` function, so new ones
(``demo``, ``lock``) slot in beside ``serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
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
    demo.set_defaults(func=_demo)


def _demo(_args: argparse.Namespace, out: TextIO) -> int:
    from falnb._demo import main as demo  # noqa: PLC0415 - only this command needs it

    return demo(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="falnb", description="fal.ai's generative-model API, native in Jupyter."
    )
    parser.add_argument("--version", action="version", version=f"falnb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    _add_demo(commands)
    return parser


def _list_endpoints(out: TextIO) -> int:
    from falnb.local.apps import builtin_endpoints  # noqa: PLC0415 - only this command needs it

    endpoints = sorted(builtin_endpoints(), key=lambda e: e.endpoint_id)
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
    if args.list:
        return _list_endpoints(out)
    from falnb.local import LocalServer  # noqa: PLC0415 - keep `falnb --version` fast

    server = LocalServer(key=args.key, host=args.host, port=args.port, concurrency=args.concurrency)
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
