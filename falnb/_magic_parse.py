"""The ``%%fal`` / ``%fal`` line and body, parsed into a typed call (pure: no kernel, no I/O).

::

    %%fal local/text-to-image --seed 42 -o fox
    prompt: a red fox in {season}
    image_size: landscape_16_9

The body is YAML or JSON (read within bounds, :mod:`falnb._safe_yaml`), else plain text that
becomes ``prompt``. ``{name}`` in the line or body and ``$name`` in the line stand for notebook
variables (:mod:`falnb._references`): a whole value keeps its type, inside a string it is
text. Anything malformed, or a reference to nothing, is a one-line UsageError: nothing is sent.
"""

from __future__ import annotations

import argparse
import keyword
import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any, NoReturn, TypeVar

from IPython.core.error import UsageError

from falnb import _safe_yaml
from falnb._protocol import is_endpoint_id
from falnb._references import InterpolationError, Template
from falnb._settings import TargetName
from falnb.client.storage import _uploadable as uploadable
from falnb.repro.modes import MODES as RECORD_MODES
from falnb.repro.modes import RecordMode
from falnb.session import Seed

__all__ = [
    "MAX_LINE_CHARS",
    "SUBCOMMANDS",
    "USAGE",
    "Invocation",
    "Options",
    "Subcommand",
    "parse",
    "parse_body",
    "usage_error",
]

USAGE = """\
%%fal ENDPOINT [options]      the body holds the arguments: YAML/JSON, or text (-> prompt)
%fal ENDPOINT [key=value ...] [options]
%fal endpoints | config [key=value ...] | status [request_id] | --help
%fal realtime ENDPOINT [name=value ...] [transport=auto|browser|kernel]
                              a live picture with sliders: (min, max[, step]) a slider, "text"
                              a text box; transport: how frames travel (default auto)
%fal seedcheck ENDPOINT [key=value ...] [--seed N]   does the seed hold? exact / near / ignores
%fal usage                    this session's requests: count, units and cost per endpoint
%fal form ENDPOINT [options]  an input form from the endpoint's schema: Run runs it as the
                              %%fal cell its "Copy as cell" shows (falnb.form(ENDPOINT))

{name} in the line or body inserts a variable's value: as a whole value it keeps its type,
inside text (or quoted) it is its text. {obj.attr}, {d['key']} and {items[0]} work too, and
$name in the line; a body that is only {name} of a dict takes it as the arguments. {{name}}
and $$ are the literal text {name} and $. A name that is not defined is an error.
Values are typed as YAML 1.2 and JSON type them: true, null, 3 and 1.5 are typed, while
16:9, yes and 010 stay text.
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
  --record once|refresh|none|off   how the result is recorded for re-runs
  --no-validate         send without checking the arguments against the endpoint's schema

sweeps (%%fal ENDPOINT [ENDPOINT ...] --sweep):
  --sweep [KEYS]        one job per combination of the list-valued keys (or only the
                        comma-separated KEYS); several endpoints, or endpoint: [a/b, c/d],
                        make the endpoint an axis too
  --zip                 pair the lists' values in order instead of combining them
  --concurrency N       jobs in flight at once (default 8)"""

SUBCOMMANDS = ("endpoints", "config", "status", "realtime", "help", "usage", "form")
MAX_LINE_CHARS = 64 * 1024
_KEY = re.compile(r"[A-Za-z_][\w.-]*")
_ASSIGN = re.compile(r"([^\s=-][^\s=]*)=(.*)", re.DOTALL)
_MAPPING_LINE = re.compile(r"^\s*[A-Za-z_][\w.-]*\s*:(\s|$)", re.MULTILINE)


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
    target: TargetName | None = None
    record: RecordMode | None = None
    sweep: tuple[str, ...] | None = None
    """None: one request; () sweeps every list-valued key; else the keys named."""
    zip: bool = False
    concurrency: int | None = None
    validate: bool = True
    """Check the arguments against the endpoint's input schema before sending."""
    seedcheck: bool = False
    """``%fal seedcheck ENDPOINT ...``: judge whether the endpoint's seed holds."""


@dataclass(frozen=True)
class Invocation:
    """A parsed request: endpoint, typed arguments, options (``endpoints``: all of a sweep's)."""

    endpoint: str
    arguments: dict[str, Any]
    options: Options = field(default_factory=Options)
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subcommand:
    """``%fal endpoints|config|status|realtime|help`` with the rest of its line.

    ``rest`` and ``args`` carry references as their text, except for ``realtime``, whose line
    is left as written for :mod:`falnb.widgets._realtime_spec` (its values keep their types).
    """

    name: str
    rest: str = ""
    args: tuple[str, ...] = ()


def usage_error(message: str) -> NoReturn:
    raise UsageError(f"{message}\n(see %fal --help)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            usage_error(f"unknown option {unknown[1]}")
        usage_error(message)


_N = TypeVar("_N", int, float)


def _number_option(
    option: str, parse: type[_N], takes: str, ok: Callable[[_N], bool], otherwise: str
) -> Callable[[str], _N]:
    """The converter of a numeric option: one line saying what it takes, or what it must be."""

    def convert(text: str) -> _N:
        try:
            value = parse(text)
        except ValueError:
            usage_error(f"{option} takes {takes}, not {text!r}")
        if not ok(value):
            usage_error(f"{option} {otherwise}, not {text}")
        return value

    return convert


_seed_number = _number_option(
    "--seed", int, "a whole number or 'auto'", lambda v: v >= 0, "must not be negative"
)
timeout_seconds = _number_option(
    "--timeout",
    float,
    "seconds",
    lambda v: 0 < v < math.inf,
    "must be a positive number of seconds",
)
_concurrency = _number_option(
    "--concurrency", int, "a whole number", lambda v: v >= 1, "must be at least 1"
)


def _seed(text: str) -> Seed:
    return "auto" if text == "auto" else _seed_number(text)


def _sweep_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    for key in keys:
        if not _KEY.fullmatch(key):
            usage_error(f"--sweep takes comma-separated argument names, not {text!r}")
    return keys


def _option_parser() -> _Parser:
    parser = _Parser(prog="%%fal", add_help=False, allow_abbrev=False)
    parser.add_argument("endpoint", nargs="*")
    parser.add_argument("-o", "--out")
    parser.add_argument("--seed", type=_seed)
    parser.add_argument("--timeout", type=timeout_seconds)
    parser.add_argument("--no-wait", dest="wait", action="store_false")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--logs", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--target", choices=("local", "fal"))
    parser.add_argument("--record", choices=RECORD_MODES)
    parser.add_argument("--sweep", nargs="?", const=(), type=_sweep_keys)
    parser.add_argument("--zip", action="store_true")
    parser.add_argument("--concurrency", type=_concurrency)
    parser.add_argument("--no-validate", dest="validate", action="store_false")
    return parser


def scalar(text: str) -> Any:
    """A ``key=value`` value: YAML's reading of it (``3`` is a number), else the text."""
    if not text.strip():
        return ""
    try:
        return _safe_yaml.load(text)
    except _safe_yaml.UnusableYAMLError:
        raise
    except _safe_yaml.YAMLInputError:
        return text


def _argument_name(key: Any, template: Template) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        usage_error(
            f"{template.source(str(key))!r} is not an argument name: use letters, digits, "
            "'_', '.' or '-', starting with a letter"
        )
    return key


def parse_body(cell: str, template: Template) -> dict[str, Any]:
    """The arguments in a cell body: a YAML/JSON mapping, else the whole text as ``prompt``."""
    if len(cell) > _safe_yaml.MAX_CHARS:
        usage_error(
            f"the cell body is {len(cell) // 1024} KiB, more than the "
            f"{_safe_yaml.MAX_CHARS // 1024} KiB falnb reads: put large values in a variable "
            "and write {name}"
        )
    text = template.mark(cell).strip()
    if not text:
        return {}
    if template.is_whole(text):  # the body is one reference: a dict of arguments, or a prompt
        value = template.resolve(text)
        if isinstance(value, Mapping):
            return {_argument_name(k, template): v for k, v in value.items()}
        return {"prompt": value}
    try:
        data = _safe_yaml.load(text)
    except _safe_yaml.YAMLInputError as exc:
        structured = text.startswith(("{", "[")) or _MAPPING_LINE.search(text)
        where = f" (line {exc.line})" if exc.line is not None else ""
        problem = template.source(str(exc))
        if isinstance(exc, _safe_yaml.UnusableYAMLError):
            usage_error(f"the cell body cannot be sent{where}: {problem}")
        if structured:
            usage_error(
                f"the cell body is not valid YAML{where}: {problem}. Write 'key: value' lines "
                "or a JSON object; quote values that contain ': ' or start with '{'"
            )
        return {"prompt": template.text(text)}
    if isinstance(data, dict) and all(isinstance(k, str) and _KEY.fullmatch(k) for k in data):
        resolved = template.resolve(data)
        return {_argument_name(k, template): v for k, v in resolved.items()}
    if isinstance(data, (dict, list)) and text.startswith(("{", "[")):
        usage_error("the cell body must be a mapping of argument names to values, not a list")
    return {"prompt": template.text(text)}


def _where(path: tuple[str | int, ...]) -> str:
    head, *rest = path
    return str(head) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)


def check_sendable(arguments: Mapping[str, Any]) -> None:
    """Every value has a JSON form, or is one falnb uploads (a path, a PIL image, bytes)."""
    stack: list[tuple[Any, tuple[str | int, ...], frozenset[int]]] = [
        (value, (name,), frozenset()) for name, value in arguments.items()
    ]
    while stack:
        value, path, parents = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if id(value) in parents or len(path) > _safe_yaml.MAX_DEPTH:
                usage_error(f"{_where(path)} nests too deep (or holds itself) to be sent as JSON")
            inner = parents | {id(value)}
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        usage_error(f"{_where(path)} has the key {key!r}: JSON keys are text")
                    stack.append((item, (*path, key), inner))
            else:
                stack.extend((item, (*path, i), inner) for i, item in enumerate(value))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                usage_error(f"{_where(path)} holds a lone surrogate, which is not valid text")
        elif isinstance(value, PurePath):
            if not Path(value).is_file():
                usage_error(f"{_where(path)} is a path to no file ({value})")
        elif isinstance(value, float):
            if not math.isfinite(value):
                usage_error(f"{_where(path)} is {value}, which JSON cannot carry")
        elif not (value is None or isinstance(value, int) or uploadable(value)):
            usage_error(
                f"{_where(path)} is a {type(value).__name__}, which cannot be sent: use text, "
                "numbers, booleans, lists or dicts of them, or a path, PIL image or bytes"
            )


def _endpoint(text: str) -> str:
    endpoint = text.strip("/")
    if not is_endpoint_id(endpoint):
        usage_error(
            f"{text!r} is not an endpoint id: use owner/alias[/path], e.g. local/text-to-image"
        )
    return endpoint


def parse(line: str, cell: str | None, namespace: Mapping[str, Any]) -> Invocation | Subcommand:
    """Parse a magic's line (and cell body) into an Invocation or a Subcommand.

    Raises UsageError (one line, no traceback) for anything malformed.
    """
    if len(line) > MAX_LINE_CHARS:
        usage_error(f"the line is longer than {MAX_LINE_CHARS // 1024} KiB")
    words = line.split(maxsplit=1)
    if words and words[0] == "realtime":
        if cell is not None and cell.strip():
            usage_error("%fal realtime takes no cell body: put its name=value pairs on the line")
        return Subcommand("realtime", words[1].strip() if len(words) > 1 else "")
    template = Template(namespace)
    try:
        return _parse(template, template.mark(line, dollars=True), cell)
    except InterpolationError as exc:
        usage_error(str(exc))
    except _safe_yaml.YAMLInputError as exc:
        usage_error(f"a value in the line is not usable: {template.source(str(exc))}")


def _parse(template: Template, line: str, cell: str | None) -> Invocation | Subcommand:
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        usage_error(f"cannot parse the line: {exc}")
    if not tokens and cell is not None and cell.strip():
        usage_error("%%fal needs an endpoint on its first line, e.g. %%fal local/text-to-image")
    if not tokens or tokens[0] in ("-h", "--help", "help"):
        return Subcommand("help")
    if tokens[0] in ("endpoints", "usage") and len(tokens) > 1:
        extra = template.source(" ".join(tokens[1:]))
        usage_error(f"%fal {tokens[0]} takes nothing after it, not {extra!r}")
    if tokens[0] == "seedcheck":
        return _seedcheck(template, line.strip()[len("seedcheck") :].strip(), cell)
    if tokens[0] in SUBCOMMANDS:
        rest = line.strip()[len(tokens[0]) :].strip()
        return Subcommand(
            tokens[0], template.text(rest), tuple(template.text(t) for t in tokens[1:])
        )
    if any(t in ("-h", "--help") for t in tokens):
        return Subcommand("help")
    assignments: dict[str, Any] = {}
    options: list[str] = []
    for token in tokens:
        match = _ASSIGN.fullmatch(token)
        if match is None:
            options.append(template.text(token))
            continue
        name = _argument_name(template.text(match[1]), template)
        if name in assignments:
            usage_error(f"{name}= is given twice in the line")
        raw = match[2]
        value = raw if template.is_whole(raw) else scalar(raw)
        assignments[name] = template.resolve(value)
    parsed = _option_parser().parse_args(options)
    endpoints = tuple(_endpoint(str(e)) for e in parsed.endpoint)
    if parsed.out is not None and (not parsed.out.isidentifier() or keyword.iskeyword(parsed.out)):
        usage_error(f"-o/--out needs a variable name, not {parsed.out!r}")
    arguments = parse_body(cell, template) if cell is not None else {}
    arguments.update(assignments)
    sweep: tuple[str, ...] | None = None
    if parsed.sweep is not None or parsed.zip or len(endpoints) > 1:
        sweep = tuple(parsed.sweep or ())
        endpoints = _sweep_endpoints(endpoints, arguments, sweep)
    elif not endpoints:
        usage_error("the endpoint comes first, e.g. %%fal local/text-to-image")
    elif parsed.concurrency is not None:
        usage_error("--concurrency applies to a sweep (--sweep, --zip or several endpoints)")
    check_sendable(arguments)
    result = Options(
        out=parsed.out,
        seed=parsed.seed,
        timeout=parsed.timeout,
        wait=parsed.wait,
        stream=parsed.stream,
        logs=parsed.logs,
        quiet=parsed.quiet,
        target=parsed.target,
        record=parsed.record,
        sweep=sweep,
        zip=parsed.zip,
        concurrency=parsed.concurrency,
        validate=parsed.validate,
    )
    if result.stream and not result.wait:
        usage_error("--stream and --no-wait cannot be combined")
    if sweep is not None and (result.stream or not result.wait or result.seed == "auto"):
        usage_error(
            "a sweep waits for all its jobs: --stream, --no-wait and --seed auto do not apply "
            "(sweep the seed with seed: [1, 2, 3] in the body)"
        )
    return Invocation(endpoints[0], arguments, result, endpoints if sweep is not None else ())


def _seedcheck(template: Template, rest: str, cell: str | None) -> Invocation:
    """``seedcheck ENDPOINT ...``: the call to check, parsed as any other."""
    if not rest:
        usage_error("%fal seedcheck needs an endpoint, e.g. %fal seedcheck local/text-to-image")
    parsed = _parse(template, rest, cell)
    if not isinstance(parsed, Invocation):
        usage_error("%fal seedcheck needs an endpoint, e.g. %fal seedcheck local/text-to-image")
    opts = parsed.options
    if opts.sweep is not None or not opts.wait or opts.stream or opts.seed == "auto" or opts.out:
        usage_error(
            "%fal seedcheck takes the arguments, --seed N and --target; it runs the endpoint "
            "three times itself"
        )
    return replace(parsed, options=replace(opts, seedcheck=True))


def _sweep_endpoints(
    endpoints: tuple[str, ...], arguments: dict[str, Any], keys: tuple[str, ...]
) -> tuple[str, ...]:
    """A sweep's endpoints: on the line, or an ``endpoint`` list among the arguments."""
    listed = arguments.get("endpoint")
    if isinstance(listed, list) and (not keys or "endpoint" in keys):
        if endpoints:
            usage_error("give the endpoints once: on the line, or as endpoint: [...] in the body")
        del arguments["endpoint"]
        endpoints = tuple(_endpoint(str(e)) for e in listed)
    if not endpoints:
        usage_error("a sweep needs an endpoint on the line, or endpoint: [a/b, c/d] in the body")
    return endpoints
