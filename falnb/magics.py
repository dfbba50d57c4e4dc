"""``%%fal`` and ``%fal``: a thin parser over :class:`falnb.session.Session`.

::

    %%fal local/text-to-image --seed 42 -o fox
    prompt: a red fox in {season}
    image_size: landscape_16_9

    %fal local/text-to-image prompt="a red fox" --seed auto
    %fal endpoints | config [key=value ...] | status [request_id] | realtime ... | --help

The line and the body are parsed into a typed :class:`Invocation` first (pure functions,
tested without a kernel); bad input is a one-line UsageError, a failed request one readable
error naming the field or the fix, never a falnb traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NoReturn

import yaml
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from falnb._settings import target_from_env
from falnb.client import errors
from falnb.client.queue import endpoint_app
from falnb.repro import ReplayMissError
from falnb.repro.media_folder import CAP_ENV, describe_cap, parse_cap, resolve_cap
from falnb.repro.urls import scrub
from falnb.session import RECORD_MODES, RecordMode, Seed, Session, default_session

__all__ = [
    "USAGE",
    "FalCellError",
    "FalMagics",
    "Invocation",
    "Options",
    "Subcommand",
    "load_ipython_extension",
    "parse",
]

USAGE = """\
%%fal ENDPOINT [options]      the body holds the arguments: YAML/JSON, or text (-> prompt)
%fal ENDPOINT [key=value ...] [options]
%fal endpoints | config [key=value ...] | status [request_id] | realtime ENDPOINT ... | --help

{name} in the line or body inserts a variable's value (typed); $name in the line, as IPython does.
Paths, PIL images and bytes are uploaded automatically.

options:
  -o, --out NAME        store the Result (or the --no-wait job) in variable NAME
  --seed N|auto         set the seed (auto: pick a random one and record it)
  --timeout S           cancel the request after S seconds
  --no-wait             return a live job at once; its progress view keeps updating
  --stream              read partial outputs of a streaming endpoint
  --logs / --no-logs    show the endpoint's log lines (default: on)
  -q, --quiet           no live progress view
  --target local|fal    the embedded local server, or fal's cloud (FAL_KEY)
  --record once|refresh|none|off   how the result is recorded for re-runs"""

SUBCOMMANDS = ("endpoints", "config", "status", "realtime", "help")
_VAR = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")
_DOLLAR = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")
_KEY = re.compile(r"[A-Za-z_][\w.-]*")
_ASSIGN = re.compile(r"([A-Za-z_][\w.-]*)=(.*)", re.DOTALL)
_MAPPING_LINE = re.compile(r"^\s*[A-Za-z_][\w.-]*\s*:(\s|$)", re.MULTILINE)
_PLACEHOLDER = re.compile(r"__falnb_var_(\d+)__")


@dataclass(frozen=True)
class Options:
    """The options of one ``%%fal`` / ``%fal`` call."""

    out: str | None = None
    seed: Seed = None
    timeout: float | None = None
    wait: bool = True
    stream: bool = False
    logs: bool | None = None
    quiet: bool = False
    target: Literal["local", "fal"] | None = None
    record: RecordMode | None = None


@dataclass(frozen=True)
class Invocation:
    """A parsed request: endpoint, typed arguments, options."""

    endpoint: str
    arguments: dict[str, Any]
    options: Options = field(default_factory=Options)


@dataclass(frozen=True)
class Subcommand:
    """``%fal endpoints|config|status|realtime|help`` with the rest of its line."""

    name: str
    rest: str = ""
    args: tuple[str, ...] = ()


# -- parsing (pure) ---------------------------------------------------------------------------


class _Values:
    """Typed values of ``{name}`` references, kept out of the text until after parsing."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace
        self.values: list[Any] = []

    def interpolate(self, text: str) -> str:
        def swap(match: re.Match[str]) -> str:
            name = match[1]
            if name not in self.namespace:
                return match[0]  # not a variable: literal text, e.g. "{style}" in a prompt
            self.values.append(self.namespace[name])
            return f"__falnb_var_{len(self.values) - 1}__"

        return _VAR.sub(swap, text).replace("{{", "{").replace("}}", "}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value.strip())
            if whole:
                return self.values[int(whole[1])]
            return _PLACEHOLDER.sub(lambda m: str(self.values[int(m[1])]), value)
        return value


def _usage(message: str) -> NoReturn:
    raise UsageError(f"{message}\n(see %fal --help)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            _usage(f"unknown option {unknown[1]}")
        _usage(message)


def _seed(text: str) -> Seed:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        _usage(f"--seed takes a whole number or 'auto', not {text!r}")
    if value < 0:
        _usage(f"--seed must not be negative, not {value}")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        _usage(f"--timeout takes seconds, not {text!r}")
    if value <= 0:
        _usage(f"--timeout must be positive, not {text}")
    return value


def _option_parser() -> _Parser:
    parser = _Parser(prog="%%fal", add_help=False)
    parser.add_argument("endpoint")
    parser.add_argument("-o", "--out")
    parser.add_argument("--seed", type=_seed)
    parser.add_argument("--timeout", type=_timeout)
    parser.add_argument("--no-wait", dest="wait", action="store_false")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--logs", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--target", choices=("local", "fal"))
    parser.add_argument("--record", choices=RECORD_MODES)
    return parser


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_body(cell: str, values: _Values) -> dict[str, Any]:
    """The arguments in a cell body: a YAML/JSON mapping, else the whole text as ``prompt``."""
    text = values.interpolate(cell).strip()
    if not text:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if text.startswith(("{", "[")) or _MAPPING_LINE.search(text):
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "not valid YAML"
            _usage(
                f"the cell body is not valid YAML{where}: {problem}. Write 'key: value' lines "
                "or a JSON object; quote values that contain ': ' or start with '{'"
            )
        data = text
    if isinstance(data, dict) and all(isinstance(k, str) and _KEY.fullmatch(k) for k in data):
        resolved: dict[str, Any] = values.resolve(data)
        return resolved
    if isinstance(data, (dict, list)) and text.startswith(("{", "[")):
        _usage("the cell body must be a mapping of argument names to values, not a list")
    return {"prompt": values.resolve(text)}


def parse(line: str, cell: str | None, namespace: Mapping[str, Any]) -> Invocation | Subcommand:
    """Parse a magic's line (and cell body) into an Invocation or a Subcommand.

    Raises UsageError (one line, no traceback) for anything malformed.
    """
    values = _Values(namespace)
    line = _DOLLAR.sub(lambda m: str(namespace[m[1]]) if m[1] in namespace else m[0], line).replace(
        "$$", "$"
    )
    line = values.interpolate(line)
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        _usage(f"cannot parse the line: {exc}")
    if not tokens or tokens[0] in ("-h", "--help", "help"):
        return Subcommand("help")
    if tokens[0] in SUBCOMMANDS:
        rest = line.strip()[len(tokens[0]) :].strip()
        return Subcommand(
            tokens[0], values.resolve(rest) if tokens[0] != "realtime" else rest, tuple(tokens[1:])
        )
    if any(t in ("-h", "--help") for t in tokens):
        return Subcommand("help")
    assignments: dict[str, Any] = {}
    rest_tokens: list[str] = []
    for token in tokens:
        match = _ASSIGN.fullmatch(token)
        if match and not token.startswith("-"):
            assignments[match[1]] = values.resolve(_scalar(match[2]))
        else:
            rest_tokens.append(token)
    parsed = _option_parser().parse_args(rest_tokens)
    endpoint = str(parsed.endpoint)
    try:
        endpoint_app(endpoint)
    except ValueError:
        _usage(
            f"{endpoint!r} is not an endpoint id: use owner/alias[/path], e.g. local/text-to-image"
        )
    if parsed.out is not None and not parsed.out.isidentifier():
        _usage(f"-o/--out needs a variable name, not {parsed.out!r}")
    arguments = parse_body(cell, values) if cell is not None else {}
    arguments.update(assignments)
    options = Options(
        out=parsed.out,
        seed=parsed.seed,
        timeout=parsed.timeout,
        wait=parsed.wait,
        stream=parsed.stream,
        logs=parsed.logs,
        quiet=parsed.quiet,
        target=parsed.target,
        record=parsed.record,
    )
    if options.stream and not options.wait:
        _usage("--stream and --no-wait cannot be combined")
    return Invocation(endpoint.strip("/"), arguments, options)


# -- errors -----------------------------------------------------------------------------------


class FalCellError(Exception):
    """A failed request, shown as its message only: no traceback of falnb's internals."""

    def __init__(self, title: str, lines: list[str]) -> None:
        # The message is saved in the notebook: no loopback server's port (it differs per run).
        title, lines = scrub(title), [scrub(line) for line in lines]
        super().__init__(" ".join([title, *lines]))
        self.title = title
        self.lines = lines

    def _render_traceback_(self) -> list[str]:
        red, reset = "\x1b[31m", "\x1b[0m"
        return [f"{red}{self.title}{reset}", *self.lines]


def cell_error(exc: BaseException, endpoint: str) -> FalCellError:
    """One readable message, with the fix, for an error a request ended with."""
    if isinstance(exc, errors.ValidationError):
        fields_ = [
            f"  {'.'.join(str(p) for p in (e.get('loc') or []) if p != 'body') or 'input'}: "
            f"{e.get('msg', e)}"
            for e in exc.field_errors
        ]
        return FalCellError(
            f"{endpoint} rejected the arguments (422):",
            [*fields_, "Fix these fields in the cell and run it again."],
        )
    if isinstance(exc, errors.MissingCredentialsError):
        return FalCellError("No fal key:", [str(exc)])
    if isinstance(exc, errors.RateLimitedError):
        wait = f"wait {exc.retry_after:g} s and " if exc.retry_after else "wait a moment and "
        return FalCellError(
            "Rate limited (429):",
            [f"fal has too many of your requests running; {wait}run the cell again."],
        )
    if isinstance(exc, errors.RequestTimeoutError):
        return FalCellError(
            "Timed out:", [f"{exc}. Raise --timeout (or leave it out) and run the cell again."]
        )
    if isinstance(exc, errors.RequestCancelledError):
        return FalCellError("Cancelled:", [str(exc)])
    if isinstance(exc, errors.HTTPError):
        if exc.status_code == 404:
            return FalCellError(
                f"Unknown endpoint {endpoint}:",
                [
                    (
                        "the server answered 404. Check the id (owner/alias[/path]); "
                        "'%fal endpoints' lists the local ones."
                    )
                ],
            )
        if exc.status_code in (401, 403):
            return FalCellError(
                "The key was rejected:",
                [f"{exc.status_code} from the server. Check FAL_KEY (or use --target local)."],
            )
        # The server's own words; the request's URL (a new request id each run) stays out.
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else str(exc)
        return FalCellError(f"{endpoint} failed ({exc.status_code}):", [detail])
    if isinstance(exc, ReplayMissError):
        return FalCellError(
            "Not in the lock (record=none):",
            [str(exc), "Run it once with record=once (or --record once) to record it."],
        )
    return FalCellError(f"{endpoint} failed:", [str(exc) or type(exc).__name__])


# -- the magics -------------------------------------------------------------------------------


@magics_class
class FalMagics(Magics):
    """``%%fal`` / ``%fal``; registered by ``%load_ext falnb`` (or by importing falnb)."""

    @property
    def session(self) -> Session:
        return default_session()

    @no_var_expand
    @line_cell_magic
    def fal(self, line: str, cell: str | None = None) -> Any:
        """Run a fal endpoint: see ``%fal --help``."""
        namespace = self.shell.user_ns if self.shell is not None else {}
        parsed = parse(line, cell, namespace)
        if isinstance(parsed, Subcommand):
            return self._subcommand(parsed)
        return self._invoke(parsed, namespace)

    def _invoke(self, call: Invocation, namespace: dict[str, Any]) -> Any:
        from falnb.widgets.progress import make_progress  # noqa: PLC0415

        opts = call.options
        logs = opts.logs if opts.logs is not None else self.session.config.logs
        quiet = opts.quiet or self.session.config.quiet
        view = make_progress(call.endpoint, quiet=quiet, logs=logs)
        kwargs: dict[str, Any] = {
            "seed": opts.seed,
            "timeout": opts.timeout,
            "logs": opts.logs,
            "record": opts.record,
            "target": opts.target,
            "progress": view,
        }
        try:
            if not opts.wait:
                job = self.session.submit(call.endpoint, call.arguments, **kwargs)
                if opts.out:
                    namespace[opts.out] = job
                return job
            result = self.session.run(call.endpoint, call.arguments, stream=opts.stream, **kwargs)
        except KeyboardInterrupt:
            state = getattr(view, "state", None)
            request_id = getattr(state, "request_id", "") or "the request"
            view.failed("interrupted", cancelled=True)
            raise FalCellError(
                "Interrupted:", [f"falnb cancelled {request_id} on the server."]
            ) from None
        except errors.FalError as exc:
            view.failed(str(exc), cancelled=isinstance(exc, errors.RequestCancelledError))
            raise cell_error(exc, call.endpoint) from None
        except ValueError as exc:
            view.failed(str(exc))
            raise UsageError(str(exc)) from None
        if opts.out:
            namespace[opts.out] = result
        if getattr(view, "_handle", None) is not None and self.shell is not None:
            # The live view now shows the result: the returned value must not show it twice.
            result._shown_in_cell = self.shell.execution_count
        return result

    # -- subcommands ---------------------------------------------------------------------------

    def _subcommand(self, command: Subcommand) -> Any:
        if command.name == "help":
            print(USAGE)  # noqa: T201 - the magic's help text goes to the cell's output
            return None
        if command.name == "endpoints":
            return self._endpoints()
        if command.name == "config":
            return self._config(command.args)
        if command.name == "status":
            return self._status(command.args)
        return self._realtime(command.rest)

    def _endpoints(self) -> None:
        try:
            from falnb.local.apps import default_registry  # noqa: PLC0415

            endpoints = list(default_registry())
        except ImportError:
            from falnb.local.apps import builtin_endpoints  # noqa: PLC0415

            endpoints = builtin_endpoints()
        lines = ["Local endpoints (the embedded server and 'falnb serve'):"]
        lines += [
            f"  {e.endpoint_id:<24} {getattr(e, 'description', '') or ''}".rstrip()
            for e in sorted(endpoints, key=lambda e: e.endpoint_id)
        ]
        lines.append("fal's cloud endpoints: https://fal.ai/models (e.g. fal-ai/flux/dev)")
        print("\n".join(lines))  # noqa: T201

    def _config(self, args: tuple[str, ...]) -> None:
        config = self.session.config
        for arg in args:
            match = _ASSIGN.fullmatch(arg)
            if not match:
                _usage(f"%fal config takes key=value, not {arg!r}")
            key, raw = match[1], match[2]
            names = [f.name for f in fields(config)]
            if key not in names:
                _usage(f"unknown setting {key!r}: use one of {', '.join(names)}")
            setattr(config, key, _config_value(key, raw))
        print(_describe_config(self.session))  # noqa: T201

    def _status(self, args: tuple[str, ...]) -> None:
        jobs = self.session.jobs
        if args:
            job = jobs.get(args[0])
            if job is None:
                _usage(f"no request {args[0]!r} in this session")
            print(f"{job.request_id}  {job.endpoint}  {job.status()}")  # noqa: T201
            return
        if not jobs:
            print("No --no-wait requests in this session.")  # noqa: T201
            return
        for job in jobs.values():
            print(f"{job.request_id}  {job.endpoint}  {job.status()}")  # noqa: T201

    def _realtime(self, rest: str) -> Any:
        from IPython.display import display  # noqa: PLC0415

        try:
            from falnb.widgets.realtime import from_magic  # noqa: PLC0415
        except ImportError:
            _usage("%fal realtime is not available in this version of falnb")
        namespace = self.shell.user_ns if self.shell is not None else {}
        widget = from_magic(rest, namespace)
        display(widget)  # type: ignore[no-untyped-call]
        return None


def _describe_config(session: Session) -> str:
    """The settings as they apply now: unset ones say what they fall back to."""
    config = session.config
    env_record = os.environ.get("FALNB_RECORD", "").strip()
    env_cap = os.environ.get(CAP_ENV, "").strip()
    cap = resolve_cap(config.media_cap)
    target = "default (fal's cloud with FAL_KEY, else the embedded local server)"
    if target_from_env() is None:
        # Its URL (with this run's port) would make the saved output differ on every run.
        target = (
            "default: the embedded local server, on a loopback port "
            "(falnb.default_client().target.run_url has its URL)"
        )
    explain = {
        "record": f"once (default; FALNB_RECORD={env_record} applies)" if env_record else "once",
        "target": target,
        "timeout": "none",
        "media_cap": f"{describe_cap(cap)} ({CAP_ENV}={env_cap})" if env_cap else "2MB (default)",
    }
    lines = []
    for item in fields(config):
        value = getattr(config, item.name)
        shown = explain.get(item.name, "none") if value is None else repr(value)
        lines.append(f"{item.name} = {shown}")
    lines += session.recorder.describe(cap)
    return "\n".join(lines)


def _config_value(key: str, raw: str) -> Any:
    value = _scalar(raw)
    if key == "record":
        if value not in RECORD_MODES:
            _usage(f"record must be one of {', '.join(RECORD_MODES)}, not {raw!r}")
        return value
    if key == "target":
        if value in (None, "none", "auto", "default"):
            return None
        if value not in ("local", "fal"):
            _usage(f"target must be local or fal, not {raw!r}")
        return value
    if key == "timeout":
        if value in (None, "none"):
            return None
        return _timeout(str(raw))
    if key == "media_cap":
        if value is None:
            return None
        try:
            return describe_cap(parse_cap(value if isinstance(value, (int, bool)) else str(raw)))
        except ValueError as exc:
            _usage(str(exc))
    if key in ("logs", "quiet"):
        if not isinstance(value, bool):
            _usage(f"{key} must be true or false, not {raw!r}")
        return value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%fal`` / ``%fal`` (``%load_ext falnb``)."""
    ipython.register_magics(FalMagics)
