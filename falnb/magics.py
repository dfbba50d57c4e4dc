"""``%%fal`` and ``%fal``: a thin front over :class:`falnb.session.Session`.

::

    %%fal local/text-to-image --seed 42 -o fox
    prompt: a red fox in {season}
    image_size: landscape_16_9

    %fal local/text-to-image prompt="a red fox" --seed auto
    %fal endpoints | usage | config [key=value ...] | status [request_id] | realtime ... | --help

The line and the body are parsed into a typed :class:`Invocation` first
(:mod:`falnb._magic_parse`, pure functions tested without a kernel); bad input is a one-line
UsageError and nothing is sent, a failed request one readable error naming the field or the
fix, never a falnb traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from falnb._magic_parse import (
    USAGE,
    Invocation,
    Options,
    Subcommand,
    parse,
    scalar,
    timeout_seconds,
    usage_error,
)
from falnb._protocol import field_name
from falnb._safe_yaml import YAMLInputError
from falnb._settings import FAL_URLS, Target, key_source, target_from_env
from falnb.client import errors
from falnb.pricing import BudgetExceededError, ConfirmationRequiredError
from falnb.repro import LockWriteError, ReplayMissError
from falnb.repro.media_folder import CAP_ENV, describe_cap, parse_cap, resolve_cap
from falnb.repro.modes import MODES as RECORD_MODES
from falnb.repro.urls import scrub
from falnb.schemas import InvalidArgumentsError, UnknownEndpointError
from falnb.session import Session, default_session

if TYPE_CHECKING:
    from falnb.widgets.progress import Show

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

_ASSIGN = re.compile(r"([A-Za-z_][\w.-]*)=(.*)", re.DOTALL)


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


def cell_error(exc: BaseException, endpoint: str, near: list[str] | None = None) -> FalCellError:
    """One readable message, with the fix, for an error a request ended with (``near``: ids
    close to an endpoint the server did not know)."""
    if isinstance(exc, errors.ValidationError):
        fields_ = [f"  {field_name(e.get('loc'))}: {e.get('msg', e)}" for e in exc.field_errors]
        return FalCellError(
            f"{endpoint} rejected the arguments (422):",
            [*fields_, "Fix these fields in the cell and run it again."],
        )
    if isinstance(exc, InvalidArgumentsError):
        return FalCellError(
            f"{endpoint}: the arguments do not fit its schema (nothing was sent):",
            [
                *(f"  {line}" for line in exc.problems),
                "Fix them, or send as is with --no-validate.",
            ],
        )
    if isinstance(exc, UnknownEndpointError):
        hint = f"Did you mean {' or '.join(exc.suggestions)}? " if exc.suggestions else ""
        return FalCellError(
            f"Unknown endpoint {endpoint}:",
            [f"{hint}'%fal endpoints' lists the local ones; nothing was sent."],
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
            hint = f" Did you mean {' or '.join(near)}?" if near else ""
            return FalCellError(
                f"Unknown endpoint {endpoint}:",
                [
                    (
                        f"the server answered 404.{hint} Check the id (owner/alias[/path]); "
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
    if isinstance(exc, errors.RequestPendingError):
        return FalCellError(f"{endpoint} is still pending on the server:", [str(exc)])
    if isinstance(exc, BudgetExceededError):
        return FalCellError("Over the notebook's budget:", [str(exc)])
    if isinstance(exc, ConfirmationRequiredError):
        return FalCellError("Confirm the cost:", [str(exc)])
    if isinstance(exc, LockWriteError):
        return FalCellError("The lock file cannot be written:", [str(exc)])
    if isinstance(exc, ReplayMissError):
        # The recorder's message already ends with how to record it.
        return FalCellError("Not in the lock (record=none):", [str(exc)])
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

    def _invoke(self, call: Invocation, namespace: dict[str, Any], show: Show | None = None) -> Any:
        """Run ``call`` as a ``%%fal`` cell does; ``show``: where its live view goes."""
        from falnb.widgets.progress import make_progress

        opts = call.options
        if opts.seedcheck:
            return self._seedcheck(call)
        if opts.sweep is not None:
            return self._sweep(call, namespace)
        logs = opts.logs if opts.logs is not None else self.session.config.logs
        quiet = opts.quiet or self.session.config.quiet
        view = make_progress(call.endpoint, quiet=quiet, logs=logs, show=show)
        kwargs: dict[str, Any] = {
            "seed": opts.seed,
            "timeout": opts.timeout,
            "logs": opts.logs,
            "record": opts.record,
            "target": opts.target,
            "validate": opts.validate,
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
            raise cell_error(exc, call.endpoint, self._near(call, exc)) from None
        except ValueError as exc:
            view.failed(str(exc))
            raise UsageError(str(exc)) from None
        if opts.out:
            namespace[opts.out] = result
        if getattr(view, "_handle", None) is not None and self.shell is not None and show is None:
            # The live view now shows the result: the returned value must not show it twice.
            result._shown_in_cell = self.shell.execution_count
        return result

    def _near(self, call: Invocation, exc: errors.FalError) -> list[str]:
        """Listed ids close to an endpoint the server answered 404 for (nothing was charged);
        a target that cannot be searched suggests nothing."""
        if not (isinstance(exc, errors.HTTPError) and exc.status_code == 404):
            return []
        try:
            client = self.session.client_for(call.options.target or self.session.config.target)
            return self.session.schemas.near(client, call.endpoint)
        except Exception:  # noqa: BLE001 - a suggestion never hides the error it explains
            return []

    def _seedcheck(self, call: Invocation) -> Any:
        """``%fal seedcheck ENDPOINT ...``: three real runs, a verdict, written to the lock."""
        from falnb.seedchecks import seedcheck

        seed = call.options.seed if isinstance(call.options.seed, int) else 1234
        try:
            return seedcheck(
                call.endpoint,
                call.arguments,
                seed=seed,
                target=call.options.target,
                session=self.session,
            )
        except KeyboardInterrupt:
            raise FalCellError("Interrupted:", ["falnb cancelled the seedcheck's runs."]) from None
        except errors.FalError as exc:
            raise cell_error(exc, call.endpoint) from None

    def _sweep(self, call: Invocation, namespace: dict[str, Any]) -> Any:
        """``--sweep`` / ``--zip`` / several endpoints: the jobs, run as :func:`falnb.sweep`."""
        from falnb.sweeps import DEFAULT_CONCURRENCY, Sweep, plan, split_axes
        from falnb.widgets.sweep import make_sweep_view

        opts = call.options
        keys = tuple(k for k in opts.sweep or () if k != "endpoint")
        try:
            base, axes = split_axes(call.arguments, keys)
            if isinstance(opts.seed, int) and "seed" not in axes:
                base["seed"] = opts.seed
            endpoints = call.endpoints or (call.endpoint,)
            if len(endpoints) < 2 and not axes:
                usage_error(
                    "nothing to sweep: give a key a list of values (seed: [1, 2]) or name "
                    "several endpoints"
                )
            axis = list(endpoints) if len(endpoints) > 1 else endpoints[0]
            jobs = plan(axis, base, axes, zip=opts.zip)
            engine = Sweep(
                self.session,
                jobs,
                concurrency=opts.concurrency or DEFAULT_CONCURRENCY,
                timeout=opts.timeout,
                record=opts.record,
                target=opts.target,
                validate=opts.validate,
                view=make_sweep_view(quiet=opts.quiet or self.session.config.quiet),
            )
        except ValueError as exc:
            raise UsageError(f"{exc}\n(see %fal --help)") from None
        try:
            results = engine.run()
        except ConfirmationRequiredError as exc:
            raise cell_error(exc, call.endpoint) from None
        except KeyboardInterrupt:
            sent = len(engine.submitted)
            raise FalCellError(
                "Interrupted:",
                [f"falnb cancelled the sweep: its {sent} submitted jobs on the server too."],
            ) from None
        if opts.out:
            namespace[opts.out] = results
        return results

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
        if command.name == "usage":
            print(self.session.usage.table())  # noqa: T201
            return None
        if command.name == "form":
            return self._form(command.rest)
        return self._realtime(command.rest)

    def _form(self, rest: str) -> Any:
        """``%fal form ENDPOINT [options]``: the endpoint's input form (falnb.widgets.form)."""
        from falnb.widgets.form import build

        endpoint, _, options = rest.partition(" ")
        if not endpoint:
            usage_error("%fal form needs an endpoint, e.g. %fal form local/text-to-image")
        try:
            return build(endpoint, options, self)
        except errors.FalError as exc:
            raise cell_error(exc, endpoint) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _endpoints(self) -> None:
        target, _why = _target_in_use(self.session)
        if target is None:
            from falnb.local.apps import default_registry

            heading = "Endpoints of the embedded local server (and 'falnb serve'):"
            listed = [(e.endpoint_id, e.description) for e in default_registry()]
        elif _is_fal_cloud(target):
            print(  # noqa: T201
                "fal's cloud endpoints: https://fal.ai/models (e.g. fal-ai/flux/dev); "
                "'%fal --target local ...' runs the local ones ('falnb serve --list')."
            )
            return
        else:
            heading = f"Endpoints of the server at {target.run_url}:"
            listed = _served_endpoints(target)
        lines = [heading]
        width = max((len(endpoint_id) for endpoint_id, _ in listed), default=0)
        lines += [f"  {eid:<{width}}  {about}".rstrip() for eid, about in sorted(listed)]
        lines.append("fal's cloud endpoints: https://fal.ai/models (e.g. fal-ai/flux/dev)")
        print("\n".join(lines))  # noqa: T201

    def _config(self, args: tuple[str, ...]) -> None:
        config = self.session.config
        for arg in args:
            match = _ASSIGN.fullmatch(arg)
            if not match:
                usage_error(f"%fal config takes key=value, not {arg!r}")
            key, raw = match[1], match[2]
            names = [f.name for f in fields(config)]
            if key not in names:
                usage_error(f"unknown setting {key!r}: use one of {', '.join(names)}")
            try:
                setattr(config, key, _config_value(key, raw))
            except YAMLInputError as exc:
                usage_error(f"{key}: {exc}")
        print(_describe_config(self.session))  # noqa: T201

    def _status(self, args: tuple[str, ...]) -> None:
        jobs = self.session.jobs
        if args:
            job = jobs.get(args[0])
            if job is None:
                usage_error(f"no request {args[0]!r} in this session")
            print(f"{job.request_id}  {job.endpoint}  {job.status()}")  # noqa: T201
            return
        if not jobs:
            print("No --no-wait requests in this session.")  # noqa: T201
            return
        for job in jobs.values():
            print(f"{job.request_id}  {job.endpoint}  {job.status()}")  # noqa: T201

    def _realtime(self, rest: str) -> Any:
        from IPython.display import display

        try:
            from falnb.widgets.realtime import from_magic
        except ImportError:
            usage_error("%fal realtime is not available in this version of falnb")
        namespace = self.shell.user_ns if self.shell is not None else {}
        try:
            widget = from_magic(rest, namespace)
        except ValueError as exc:
            usage_error(str(exc))
        display(widget)  # type: ignore[no-untyped-call]
        return None


def _is_fal_cloud(target: Target) -> bool:
    return all(getattr(target, name) == url for name, url in FAL_URLS.items())


def _target_in_use(session: Session) -> tuple[Target | None, str]:
    """Where a call without ``--target`` goes, and why; None is the embedded local server."""
    choice = session.config.target
    env = os.environ
    if choice == "local":
        return None, "%fal config target=local"
    if choice == "fal":
        fal = target_from_env({**env, "FALNB_TARGET": "fal"}) or Target.fal()
        return fal, "%fal config target=fal"
    raw = env.get("FALNB_TARGET", "").strip()
    try:
        target = target_from_env()
    except ValueError as exc:
        usage_error(str(exc))
    if raw and raw.lower() != "auto":
        return target, f"FALNB_TARGET={raw}"
    return target, "a fal key is set" if target is not None else "no fal key is set"


def _key_source() -> str:
    source = key_source()
    return source[0] if source is not None else ""


def _describe_target(session: Session) -> list[str]:
    """The target in use, with its base URLs (never the key: only where it comes from)."""
    target, why = _target_in_use(session)
    if target is None:
        # Its URL (with this run's port) would make the saved output differ on every run.
        where = "in this process, on a loopback port (falnb.default_client().target.run_url)"
        return [
            f"target = local ({why}): the embedded local server, {where}",
            "key = the embedded server's own",
        ]
    where = "fal's cloud" if _is_fal_cloud(target) else "the URLs FALNB_*_URL give"
    lines = [f"target = fal ({why}): {where}"]
    lines += [f"  {name} = {getattr(target, name)}" for name in FAL_URLS]
    source = _key_source()
    lines.append(f"key = from {source}" if source else "key = none (set FAL_KEY)")
    return lines


def _served_endpoints(target: Target) -> list[tuple[str, str]]:
    """The endpoints a falnb local server at ``target`` serves (``GET /_falnb/endpoints``)."""
    import httpx

    url = f"{target.run_url}/_falnb/endpoints"
    headers = {"Authorization": target.key.header()} if target.key is not None else {}
    # Errors are raised outside the except blocks: httpx's exceptions hold the request, whose
    # headers hold the key, and must not ride along as __context__.
    problem = ""
    try:
        response = httpx.get(url, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        problem = f"{url} is unreachable ({type(exc).__name__})."
    if problem:
        raise FalCellError("Cannot list endpoints:", [problem])
    if response.status_code in (401, 403):
        problem = f"{url} rejected the key ({response.status_code})."
    else:
        try:
            listed: Any = response.json()["endpoints"] if response.is_success else None
            return [(str(e["endpoint_id"]), str(e.get("description") or "")) for e in listed]
        except (ValueError, KeyError, TypeError, AttributeError):
            problem = (
                f"the server at {target.run_url} is not a falnb local server ({url} answered "
                f"{response.status_code}); see its own documentation."
            )
    raise FalCellError("Cannot list endpoints:", [problem])


def _describe_config(session: Session) -> str:
    """The settings as they apply now: unset ones say what they fall back to."""
    config = session.config
    env_record = os.environ.get("FALNB_RECORD", "").strip()
    env_cap = os.environ.get(CAP_ENV, "").strip()
    cap = resolve_cap(config.media_cap)
    explain = {
        "record": f"once (default; FALNB_RECORD={env_record} applies)" if env_record else "once",
        "timeout": "none",
        "confirm_above": "1.0 on fal's cloud (default; never on a local server)",
        "media_cap": f"{describe_cap(cap)} ({CAP_ENV}={env_cap})" if env_cap else "2MB (default)",
    }
    lines = []
    for item in fields(config):
        if item.name == "target":
            lines += _describe_target(session)
            continue
        value = getattr(config, item.name)
        shown = explain.get(item.name, "none") if value is None else repr(value)
        lines.append(f"{item.name} = {shown}")
    lines += session.recorder.describe(cap)
    return "\n".join(lines)


def _config_value(key: str, raw: str) -> Any:
    # Names are read as written: YAML would read record=off as the boolean false.
    value = raw.strip() if key in ("record", "target") else scalar(raw)
    if key == "record":
        if value not in RECORD_MODES:
            usage_error(f"record must be one of {', '.join(RECORD_MODES)}, not {raw!r}")
        return value
    if key == "target":
        if value in ("", "none", "auto", "default"):
            return None
        if value not in ("local", "fal"):
            usage_error(f"target must be local or fal, not {raw!r}")
        return value
    if key == "timeout":
        if value in (None, "none"):
            return None
        return timeout_seconds(str(raw))
    if key == "media_cap":
        if value is None:
            return None
        try:
            return describe_cap(parse_cap(value if isinstance(value, (int, bool)) else str(raw)))
        except ValueError as exc:
            usage_error(str(exc))
    if key in ("budget", "confirm_above"):
        if value in (None, "off", "none") or value is False:
            return None if key == "budget" else float("inf")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            usage_error(f"{key} must be an amount in USD ({key}=5.00) or off, not {raw!r}")
        return float(value)
    if key in ("logs", "quiet"):
        if not isinstance(value, bool):
            usage_error(f"{key} must be true or false, not {raw!r}")
        return value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%fal`` / ``%fal`` (``%load_ext falnb``), their Tab completion and Shift-Tab."""
    ipython.register_magics(FalMagics)
    from falnb import _completion  # only a shell needs it

    _completion.install(ipython)
