"""Session: one request's way from arguments to a :class:`Result`, as a readable pipeline.

Every step is its own method, so reproducibility (lock file, media store, record modes,
pending re-attach) plugs in by overriding or filling the hook steps::

    prepare       look the call up in the lock; resolve the seed          -> Call
    lookup        the recorded Result of a hit (no network at all)        -> Result | None
    attach_or_submit  re-attach to a request still pending (in the lock or in this session's
                  memory), else check the lock is writable and put the request in the queue
                  (uploads local inputs); at most one submission per call at a time
    write_down    write the request id down as pending, before waiting (in memory too)
    follow        follow status events into the progress view, get the output
    collect_media download each output file once, into the media store (fetch_media)
    build_result  the Result
    record        write the result, its seed and its media to the lock

Nothing paid for is lost: only the server's definitive answer (``settles_request``) marks a
request failed. A wait that loses the server, a download or a lock write that fails leave it
pending (:class:`~falnb.client.RequestPendingError` says so), and a re-run re-attaches. A lock
that cannot be written is found before anything is sent; if a write fails after that, the
request id stays in this session's memory, so a re-run in the same kernel still re-attaches.

Reproducibility (:mod:`falnb.repro`): the record mode comes from ``record=`` / ``--record``,
else ``%fal config record=...``, else ``FALNB_RECORD``, else ``once``. The pinned seed is the
seed given, else the one an earlier run recorded, else a random one for ``seed="auto"``, else
the seed the endpoint reports back.

>>> session = Session()
>>> result = session.run("local/text-to-image", {"prompt": "a red fox"}, seed=42)
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from falnb import _runtime
from falnb._progress import NullProgress, Progress
from falnb._settings import TargetName as TargetChoice
from falnb._usage import Usage
from falnb._values import decode_data_uri
from falnb.client import (
    FalError,
    HTTPError,
    RequestCancelledError,
    RequestHandle,
    RequestPendingError,
    SyncClient,
)
from falnb.client._status import Status
from falnb.client._transport import download_blocking, settles_request
from falnb.client.queue import Deadline
from falnb.pricing import (
    BudgetExceededError,
    ConfirmationRequiredError,
    Price,
    Prices,
    describe_units,
    estimate_units,
    money,
)
from falnb.repro import (
    LockWriteError,
    Lookup,
    Recorder,
    ReplayMissError,
    fingerprint,
    portable,
    portable_url,
    resolve_cap,
    resolve_mode,
)
from falnb.repro.modes import MODES as RECORD_MODES
from falnb.repro.modes import RecordMode
from falnb.result import Result, binary_output, find_files
from falnb.schemas import InvalidArgumentsError, Schemas

if TYPE_CHECKING:
    from falnb.seedchecks import SeedCheck

__all__ = [
    "Call",
    "Job",
    "RecordMode",
    "Session",
    "SessionConfig",
    "TargetChoice",
    "default_session",
    "usage",
]

Seed = int | Literal["auto"] | None

#: The estimate above which a sweep or map on fal's cloud asks to be run again, in USD.
CONFIRM_ABOVE = 1.0


@dataclass
class SessionConfig:
    """Defaults for every call of a session (``%fal config key=value`` sets them)."""

    record: RecordMode | None = None
    """None: ``FALNB_RECORD``, else ``once``."""
    logs: bool = True
    timeout: float | None = None
    target: TargetChoice | None = None
    quiet: bool = False
    media_cap: str | None = None
    """Bytes per file kept in ``falnb-media/`` beside the lock (``2MB``, ``off``, ``all``);
    None: ``FALNB_MEDIA_CAP``, else 2MB."""
    budget: float | None = None
    """What this session may spend on fal, in USD (None: no limit): a call whose estimated
    cost would pass it is refused before it is sent."""
    confirm_above: float | None = None
    """A sweep or map whose estimated cost passes this (USD) is shown and sent only when run
    again (``inf``: never ask). None: :data:`CONFIRM_ABOVE` on fal's cloud, never on a falnb
    local server (its work is free)."""


@dataclass(frozen=True)
class Call:
    """One request as it will be sent: the seed is already resolved into ``arguments``."""

    endpoint: str
    arguments: dict[str, Any]
    seed: int | None = None
    record: RecordMode = "once"
    target: TargetChoice | None = None
    timeout: float | None = None
    logs: bool = True
    stream: bool = False
    validate: bool = True
    """Check the arguments against the endpoint's input schema before sending."""
    recorded: Lookup | None = field(default=None, repr=False, compare=False)
    """What the lock knows about this call (None: nothing is recorded)."""


@dataclass
class _Run:
    """What the wait step learned: the output, its request id, timings and logs."""

    output: dict[str, Any]
    request_id: str | None
    started: float
    logs: list[str] = field(default_factory=list)
    billable_units: float | None = None
    cancel_requested: bool = False


def _log_lines(status: Status) -> list[str]:
    logs = getattr(status, "logs", None) or []
    return [str(e.get("message", "")) for e in logs if isinstance(e, dict)]


class Session:
    """falnb's path from a call to a Result; the magics and the Python API both enter here.

    ``client`` defaults to falnb's default client (fal's cloud with a key, else the embedded
    local server); ``%fal --target local|fal`` picks one explicitly per call.
    """

    def __init__(
        self, client: SyncClient | None = None, *, recorder: Recorder | None = None, **config: Any
    ) -> None:
        self._client = client
        self._clients: dict[str, SyncClient] = {}
        self._recorder = recorder
        self.config = SessionConfig(**config)
        self.jobs: dict[str, Job] = {}
        # (request id, seed) of requests submitted and not yet collected, by call: the lock's
        # twin in memory, which outlives a lock write that failed.
        self._pending: dict[tuple[str | None, str], tuple[str, int | None]] = {}
        self._slots: dict[tuple[str | None, str], threading.Lock] = {}
        self._slots_lock = threading.Lock()
        #: Endpoints' unit prices (asked for once), and every Result handed out (%fal usage).
        self.prices = Prices()
        self.usage = Usage()
        # Estimated costs of requests sent and not yet finished, by request id (the budget
        # counts them as spent until their Result says what they cost).
        self._committed: dict[str, float] = {}
        self._budget_lock = threading.Lock()
        #: Endpoints' input schemas, asked for once, which calls are checked against.
        self.schemas = Schemas()
        self._estimates_shown: set[tuple[tuple[str, str], ...]] = set()

    @property
    def recorder(self) -> Recorder:
        """The lock file (``falnb.lock`` beside the notebook) and media store this session uses."""
        if self._recorder is None:
            from falnb._settings import key_from_env

            key = key_from_env()
            self._recorder = Recorder.default(
                _notebook_path(), secrets=[key.reveal()] if key else []
            )
        return self._recorder

    def __repr__(self) -> str:
        return f"Session(record={self.config.record!r}, target={self.config.target!r})"

    # -- entry points --------------------------------------------------------------------------

    def run(
        self,
        endpoint: str,
        arguments: dict[str, Any],
        *,
        seed: Seed = None,
        timeout: float | None = None,
        logs: bool | None = None,
        record: RecordMode | None = None,
        target: TargetChoice | None = None,
        stream: bool = False,
        validate: bool = True,
        progress: Progress | None = None,
    ) -> Result:
        """Run ``endpoint`` and wait for its Result (a KeyboardInterrupt cancels the request)."""
        view = progress or NullProgress()
        call = self.prepare(
            endpoint,
            arguments,
            seed=seed,
            timeout=timeout,
            logs=logs,
            record=record,
            target=target,
            stream=stream,
            validate=validate,
        )
        recorded = self.lookup(call)
        if recorded is not None:
            view.finished(recorded)
            return recorded
        if call.stream:
            return self.finish(call, self.wait_streaming(call, view), view)
        while True:
            started = time.monotonic()
            with self._one_submission(call) as current:
                call = current
                recorded = self.lookup(call)  # another thread may have recorded it meanwhile
                if recorded is not None:
                    view.finished(recorded)
                    return recorded
                reattached = self.pending_request_id(call) is not None
                handle = self.attach_or_submit(call)
            try:
                run = self.follow(call, handle, view, started)
            except BaseException as exc:
                error = self.settle(call, handle.request_id, exc)
                if reattached and isinstance(exc, HTTPError) and exc.status_code == 404:
                    continue  # the server no longer knows that request: submit it afresh
                if error is exc:
                    raise
                raise error from exc
            return self.finish(call, run, view)

    def submit(
        self,
        endpoint: str,
        arguments: dict[str, Any],
        *,
        seed: Seed = None,
        timeout: float | None = None,
        logs: bool | None = None,
        record: RecordMode | None = None,
        target: TargetChoice | None = None,
        validate: bool = True,
        progress: Progress | None = None,
    ) -> Job:
        """Submit and return a live :class:`Job` at once; a thread follows it to its Result."""
        view = progress or NullProgress()
        call = self.prepare(
            endpoint,
            arguments,
            seed=seed,
            timeout=timeout,
            logs=logs,
            record=record,
            target=target,
            validate=validate,
        )
        recorded = self.lookup(call)
        if recorded is not None:
            view.finished(recorded)
            return Job.done_with(call, recorded)
        started = time.monotonic()
        with self._one_submission(call) as current:
            call = current
            recorded = self.lookup(call)
            if recorded is not None:
                view.finished(recorded)
                return Job.done_with(call, recorded)
            handle = self.attach_or_submit(call)
        job = Job(self, call, handle, view, started)
        self.jobs[handle.request_id] = job
        job.start()
        return job

    # -- the pipeline steps --------------------------------------------------------------------

    def prepare(
        self,
        endpoint: str,
        arguments: dict[str, Any],
        *,
        seed: Seed = None,
        timeout: float | None = None,
        logs: bool | None = None,
        record: RecordMode | None = None,
        target: TargetChoice | None = None,
        stream: bool = False,
        validate: bool = True,
    ) -> Call:
        """The Call to send: options over session defaults, the lock consulted, the seed pinned.

        In mode ``none`` a call the lock cannot replay raises
        :class:`~falnb.repro.ReplayMissError` here, before anything is sent.
        """
        if record is not None and record not in RECORD_MODES:
            raise ValueError(f"record must be one of {', '.join(RECORD_MODES)}, not {record!r}")
        config = self.config
        mode = resolve_mode(record, config.record)
        endpoint = endpoint.strip("/")
        arguments = dict(arguments)
        if seed is not None and seed != "auto":
            arguments["seed"] = int(seed)  # a given seed is part of the call's identity
        recorded = None
        if mode != "off":
            recorded = self.recorder.lookup(
                endpoint,
                arguments,
                mode=mode,
                cell=_cell_label(),
                media_cap=resolve_cap(config.media_cap),
            )
        arguments, resolved = self.resolve_seed(arguments, self._pinned_seed(recorded, seed))
        # An earlier output fed in by its saved URL (falnb-local:, no server behind it) is
        # sent as its bytes, which the client uploads.
        arguments = self.recorder.inputs(arguments)
        target = target or config.target
        if self._uses_embedded(target):
            # Replayed or sent, a call says so: the first cell's saved output is the same.
            from falnb import _embedded

            _embedded.announce()
        return Call(
            endpoint=endpoint,
            arguments=arguments,
            seed=resolved,
            record=mode,
            target=target,
            timeout=timeout if timeout is not None else config.timeout,
            logs=config.logs if logs is None else logs,
            stream=stream,
            validate=validate,
            recorded=recorded,
        )

    def _uses_embedded(self, target: TargetChoice | None) -> bool:
        if target is not None:
            return target == "local"
        if self._client is not None:
            return False  # a client of the caller's own, not the embedded default
        from falnb._settings import target_from_env

        return target_from_env() is None

    @staticmethod
    def _pinned_seed(recorded: Lookup | None, seed: Seed) -> Seed:
        """The seed to send: a recorded one replaces "auto" or no seed (a refresh sends it)."""
        if seed not in (None, "auto") or recorded is None or recorded.seed is None:
            return seed
        entry = recorded.entry
        if recorded.hit and entry is not None and not entry.extra.get("seed_sent"):
            # Replaying a call that sent no seed: keep its arguments exactly as they were.
            return seed
        return recorded.seed

    def resolve_seed(
        self, arguments: dict[str, Any], seed: Seed
    ) -> tuple[dict[str, Any], int | None]:
        """Put ``seed`` into the arguments: ``"auto"`` picks a random one before sending."""
        if seed == "auto":
            seed = secrets.randbelow(2**31)
        if seed is not None:
            arguments["seed"] = int(seed)
        given = arguments.get("seed")
        return arguments, given if isinstance(given, int) and not isinstance(given, bool) else None

    def lookup(self, call: Call) -> Result | None:
        """The recorded Result of ``call`` when the lock has one to replay, else None."""
        recorded = call.recorded
        if recorded is None or not recorded.hit or recorded.entry is None:
            return None
        entry = recorded.entry
        output = entry.result if isinstance(entry.result, dict) else {}
        media = self.collect_media(output, call)
        timings = entry.extra.get("timings")
        units, price = _recorded_billing(entry.extra.get("billing"), call.endpoint)
        result = Result(
            endpoint=call.endpoint,
            arguments=call.arguments,
            output=output,
            request_id=entry.request_id,
            seed=entry.seed,
            media=media,
            timings=dict(timings) if isinstance(timings, dict) else {},
            logs=[],
            billable_units=units,
            price=price,
            replayed=True,
        )
        # The badge this result was recorded with, not the lock's verdict now: a seedcheck run
        # later (another notebook, another cell) must not change what a replay saves.
        result.seedcheck = _recorded_seedcheck(entry.extra.get("seedcheck"), call.endpoint)
        self.usage.add(result)
        return result

    def pending_request_id(self, call: Call) -> str | None:
        """A request submitted earlier and not yet collected: by this session (in memory, kept
        even when the lock could not be written), or by an earlier kernel (the lock)."""
        key = self._key(call)
        if key is not None and key in self._pending:
            return self._pending[key][0]
        return call.recorded.pending_request_id if call.recorded is not None else None

    def client_for(self, target: TargetChoice | None) -> SyncClient:
        """The client for ``target``: local = the embedded server, fal = the environment's."""
        if target is None:
            if self._client is None:
                import falnb  # the package's default client

                self._client = falnb.default_client()
            return self._client
        if target not in self._clients:
            from falnb import _embedded
            from falnb._settings import Target, target_from_env

            if target == "local":
                chosen = _embedded.embedded_server().target
            else:
                chosen = target_from_env({"FALNB_TARGET": "fal"} | _env()) or Target.fal()
            self._clients[target] = SyncClient(chosen)
        return self._clients[target]

    def attach_or_submit(self, call: Call) -> RequestHandle:
        """The request to wait on: a pending one re-attached, else a new submission.

        Before paying, the lock is checked writable (:class:`~falnb.repro.LockWriteError`: one
        line naming the path and the fix; nothing is sent).
        """
        pending = self.pending_request_id(call)
        if pending:
            return self.client_for(call.target).get_handle(call.endpoint, pending)
        if call.recorded is not None and call.recorded.recording:
            try:
                self.recorder.lock.check_writable()
            except LockWriteError as exc:
                raise LockWriteError(f"{exc}; nothing was submitted") from None
        self.check_arguments(call)
        if self.config.budget is None:
            handle = self.submit_request(call)
        else:
            with self._budget_lock:  # one check-and-send at a time: two calls cannot both fit
                estimate = self.check_budget(call, self.config.budget)
                handle = self.submit_request(call)
                self._committed[handle.request_id] = estimate
        try:
            self.write_down(call, handle.request_id)
        except KeyboardInterrupt as interrupt:
            # Accepted already: an interrupt now cancels it, as one during the wait would.
            _runtime.run(handle.async_handle.cancel_if_pending())
            self.settle(call, handle.request_id, interrupt)
            raise
        return handle

    def check_budget(self, call: Call, budget: float) -> float:
        """The call's estimated cost, or :class:`BudgetExceededError` (nothing is sent) when
        it would pass ``budget`` or cannot be estimated before it runs."""
        spent = self.usage.spent() + sum(self._committed.values())
        so_far = f"this session has spent {money(spent)} of its {money(budget)} budget"
        fix = "raise it with %fal config budget=... (or budget=off)"
        price = self.prices.get(self.client_for(call.target), call.endpoint)
        if price is None:
            raise BudgetExceededError(
                f"{call.endpoint} has no known price, so its cost cannot be checked against the "
                f"budget; {so_far}; nothing was submitted ({fix})"
            )
        units = estimate_units(price.unit, call.arguments)
        if units is None:
            raise BudgetExceededError(
                f"{call.endpoint} bills per {price.unit} ({money(price.unit_price)} each), which "
                f"is only known after it runs; {so_far}; nothing was submitted ({fix})"
            )
        cost = price.cost(units)
        if spent + cost > budget + 1e-9:
            raise BudgetExceededError(
                f"{call.endpoint} would cost {money(cost)} "
                f"({describe_units(units, price.unit)} \u00d7 {money(price.unit_price)}); "
                f"{so_far}; nothing was submitted ({fix})"
            )
        return cost

    def check_arguments(self, call: Call) -> None:
        """Before paying: the arguments checked against the endpoint's input schema.

        Raises :class:`~falnb.schemas.InvalidArgumentsError` naming every bad field, or
        :class:`~falnb.schemas.UnknownEndpointError` with a "did you mean"; nothing is sent.
        Without a schema (offline, an older server) nothing is checked.
        """
        if not call.validate:
            return
        schema = self.schemas.get(self.client_for(call.target), call.endpoint)
        found = schema.problems(call.arguments) if schema is not None else []
        if found:
            raise InvalidArgumentsError(call.endpoint, found)

    def confirm_many(
        self,
        jobs: list[tuple[str, dict[str, Any]]],
        *,
        record: RecordMode | None = None,
        target: TargetChoice | None = None,
    ) -> None:
        """Before a sweep or map sends anything: when its estimate (jobs the lock replays are
        free) passes ``config.confirm_above``, raise :class:`ConfirmationRequiredError` with
        the estimate; the same jobs asked again are confirmed and go through."""
        client = self.client_for(target or self.config.target)
        threshold = self.config.confirm_above
        if threshold is None and client.target.name == "fal":
            threshold = CONFIRM_ABOVE
        if threshold is None or threshold == float("inf") or not jobs:
            return
        mode = resolve_mode(record, self.config.record)
        total, counted, unknown, free = 0.0, [], 0, 0
        for endpoint, arguments in jobs:
            if mode != "off":
                try:
                    if self.recorder.lookup(endpoint, arguments, mode=mode).hit:
                        free += 1
                        continue
                except ReplayMissError:
                    continue  # it fails without being sent
            price = self.prices.get(client, endpoint.strip("/"))
            units = estimate_units(price.unit, arguments) if price is not None else None
            if price is None or units is None:
                unknown += 1
                continue
            total += price.cost(units)
            counted.append(describe_units(units, price.unit))
        if total <= threshold + 1e-9:
            return
        key = tuple(sorted((e, fingerprint(e, a)) for e, a in jobs))
        if key in self._estimates_shown:
            self._estimates_shown.discard(key)  # asked again: confirmed
            return
        self._estimates_shown.add(key)
        sent = len(jobs) - free
        more = f" plus {unknown} whose cost is only known after they run" if unknown else ""
        replays = f" ({free} more replay from the lock for free)" if free else ""
        raise ConfirmationRequiredError(
            f"these {sent} jobs would cost about {money(total)}{more}, above the "
            f"{money(threshold)} that needs confirming{replays}; nothing was submitted. Run it "
            "again to send them (or set %fal config confirm_above=... / confirm_above=off)"
        )

    def submit_request(self, call: Call) -> RequestHandle:
        """Put ``call`` in the endpoint's queue (local files and images are uploaded first)."""
        deadline = call.timeout if call.timeout is not None and call.timeout > 1 else None
        # Like subscribe: a request that cannot start before the caller gives up is dropped.
        return self.client_for(call.target).submit(
            call.endpoint, call.arguments, start_timeout=deadline
        )

    def write_down(self, call: Call, request_id: str) -> None:
        """Write the request id down as pending before waiting: nothing paid is lost.

        This session remembers it too; if the lock cannot be written, it says so in one line
        and the wait goes on (a re-run in this kernel re-attaches from memory).
        """
        key = self._key(call)
        if key is not None:
            self._pending[key] = (request_id, call.seed)
        if call.recorded is None:
            return
        try:
            self.recorder.begin(call.recorded, request_id, seed=call.seed)
        except (LockWriteError, OSError) as exc:
            _notice(
                f"falnb: {exc}; request {request_id} is still running and its id is kept in "
                "memory, so a re-run in this kernel picks it up"
            )

    def follow(self, call: Call, handle: RequestHandle, progress: Progress, started: float) -> _Run:
        """Follow ``handle``'s status into ``progress`` and return its output.

        Lost contact shows as "reconnecting" and is ridden out (``FALNB_RECONNECT_TIMEOUT``).
        A timeout (``call.timeout``, counted from ``started``) or an interrupt cancels the
        request remotely (the client does it).
        """
        deadline = Deadline(call.timeout, started=started)
        logs: list[str] = []
        try:
            progress.request(handle.request_id, handle.cancel)
            for status in handle._iter_events(
                with_logs=call.logs, deadline=deadline, reconnecting=True
            ):
                logs.extend(_log_lines(status))
                progress.status(status)
            output = handle._wait(handle.async_handle._result(progress.status), deadline)
        except KeyboardInterrupt:
            # Raised in a callback, between two waits: cancel here (a wait cancels by itself).
            _runtime.run(handle.async_handle.cancel_if_pending())
            raise
        return _Run(
            output,
            handle.request_id,
            started,
            logs,
            handle.billable_units,
            cancel_requested=handle.cancel_requested,
        )

    def settle(self, call: Call, request_id: str, error: BaseException) -> BaseException:
        """What a failed wait leaves behind; returns the error to raise.

        A definitive answer (a 4xx about the request, the app's failure, a cancel, a timeout
        that cancelled it) is recorded as failed or cancelled. Anything else leaves the request
        pending in the lock and in memory, and the error says how to pick it up.
        """
        cancelled = isinstance(error, (KeyboardInterrupt, RequestCancelledError))
        if not (cancelled or settles_request(error)):
            return _still_pending(error, request_id)
        self._forget(call)
        recorded = call.recorded
        if recorded is None or not recorded.recording:
            return error
        entry = self.recorder.lock.get(recorded.fingerprint)
        if entry is None or entry.status != "pending" or entry.request_id != request_id:
            return error  # nothing of this request was written down: nothing to remember
        try:
            self.recorder.fail(recorded, request_id, error, cancelled=cancelled)
        except LockWriteError as exc:
            _notice(f"falnb: {exc}")
        return error

    def wait_streaming(self, call: Call, progress: Progress) -> _Run:
        """Read a streaming endpoint's partial outputs into ``progress``; the last is final.

        A stream is a direct run, which fal keeps nowhere to re-attach to: a connection lost
        mid-stream ends the call (the error says a re-run sends it again).
        """
        self.check_arguments(call)
        client = self.client_for(call.target)
        started = time.monotonic()
        stream = client.stream(call.endpoint, call.arguments, timeout=call.timeout)
        received = 0
        chunks: list[bytes] = []
        try:
            for partial in stream:
                received += 1
                if isinstance(partial, bytes):
                    chunks.append(partial)
                    size = sum(map(len, chunks))
                    progress.partial({"text": f"{size} bytes of {stream.content_type}"})
                else:
                    progress.partial(partial)
        except FalError as exc:
            if received == 0 or settles_request(exc):
                raise
            outputs = f"{received} partial output" + ("s" if received != 1 else "")
            raise FalError(
                f"{exc}; the stream broke after {outputs}, and a streamed call cannot be "
                "re-attached: re-running the cell sends it again"
            ) from exc
        if chunks:
            output = binary_output(b"".join(chunks), stream.content_type)
        else:
            output = stream.final if isinstance(stream.final, dict) else {}
        return _Run(output, stream.request_id, started)

    def collect_media(self, output: dict[str, Any], call: Call | None = None) -> dict[str, bytes]:
        """Download every output file once (by URL), through :meth:`fetch_media`."""
        media: dict[str, bytes] = {}
        for _key, file in find_files(output):
            url = str(file["url"])
            if url not in media:
                media[url] = self.fetch_media(url, call)
        return media

    def fetch_media(self, url: str, call: Call | None = None) -> bytes:
        """The bytes of one output file, from the media store (downloaded once, verified).

        A call in mode ``none`` never touches the network; with ``record=off`` files are
        downloaded directly, leaving no trace in the store.
        """
        if url.startswith("data:"):
            return decode_data_uri(url)
        if call is not None and call.record == "off":
            return download_blocking(url).content
        return self.recorder.media(url, call.recorded if call is not None else None)

    def build_result(self, call: Call, run: _Run, media: dict[str, bytes]) -> Result:
        output = run.output
        seed = output.get("seed") if isinstance(output.get("seed"), int) else call.seed
        timings: dict[str, float] = {}
        if isinstance(output.get("timings"), dict):
            timings.update(
                {k: v for k, v in output["timings"].items() if isinstance(v, (int, float))}
            )
        timings["total"] = round(time.monotonic() - run.started, 3)
        price = None
        if run.billable_units is not None:
            price = self.prices.get(self.client_for(call.target), call.endpoint)
        result = Result(
            endpoint=call.endpoint,
            arguments=call.arguments,
            output=output,
            request_id=run.request_id,
            seed=seed,
            media=media,
            timings=timings,
            logs=run.logs,
            billable_units=run.billable_units,
            price=price,
        )
        result.seedcheck = _seedcheck(call)
        return result

    def record(self, call: Call, result: Result, media: dict[str, bytes] | None = None) -> None:
        """Write the result, its pinned seed and its media to the lock (per ``call.record``).

        ``media`` holds the files already downloaded, by URL (the rest are downloaded).
        """
        recorded = call.recorded
        if recorded is None or not recorded.recording or not result.request_id:
            return
        # Timings and whether a seed was sent: what a replay needs to render exactly as this run.
        extra: dict[str, Any] = {"seed_sent": call.seed is not None, "timings": result.timings}
        if result.units is not None:
            # What it billed (and the price then): a replay shows what it saved, for free.
            extra["billing"] = {"units": result.units}
            if result.price is not None:
                extra["billing"].update(
                    unit=result.price.unit,
                    unit_price=result.price.unit_price,
                    currency=result.price.currency,
                )
        if result.seedcheck is not None:
            # The badge it showed, so a replay shows the same (the lock's verdict may change).
            check = result.seedcheck
            extra["seedcheck"] = {
                "seed": check.seed,
                "verdict": check.verdict,
                "same_seed": check.same_seed,
                "other_seed": check.other_seed,
            }
        schema = self.schema_hash(call)
        if schema is not None:
            # Which input schema the call ran against: a refresh says when it has changed.
            extra["schema"] = schema
            before = recorded.entry.extra.get("schema") if recorded.entry is not None else None
            if call.record == "refresh" and isinstance(before, str) and before != schema:
                _notice(
                    f"falnb: {call.endpoint}'s input schema changed since this call was recorded "
                    f"({before[:19]}… -> {schema[:19]}…); the lock now pins the new one"
                )
        self.recorder.complete(
            recorded, result.request_id, result.json, seed=call.seed, extra=extra, media=media
        )

    def schema_hash(self, call: Call) -> str | None:
        """The hash of the endpoint's OpenAPI document (this session's copy), or None."""
        try:
            schema = self.schemas.get(self.client_for(call.target), call.endpoint)
        except FalError:
            return None
        return schema.hash if schema is not None else None

    def finish(self, call: Call, run: _Run, progress: Progress) -> Result:
        """The steps after the output arrived: media, Result, record, final view.

        The Result carries loopback URLs port-free, as the lock does (:mod:`falnb.repro.urls`),
        so a run and its replays show the same output. A download that fails here leaves the
        request pending (it is paid for): the error says so, and a re-run re-attaches and
        fetches its output again. A lock write that fails is said in one line; the Result is
        returned and its request id kept in memory.
        """
        try:
            downloaded = self.collect_media(run.output, call)
        except (FalError, OSError) as exc:
            if run.request_id is None or call.stream:
                raise
            # The output is paid for and the server still has it: the request stays pending.
            raise _still_pending(exc, run.request_id) from exc
        media = {portable_url(url): data for url, data in downloaded.items()}
        result = self.build_result(call, replace(run, output=portable(run.output)), media)
        if run.cancel_requested:
            # fal's cloud only tells a running app to stop: this one finished first.
            result.cancel_requested = True
            _notice(
                f"falnb: cancel was requested for request {run.request_id}, but it completed "
                "first: its result is delivered and recorded"
            )
        try:
            self.record(call, result, media)
        except (LockWriteError, OSError) as exc:
            # The result is here: show it. Its id stays in memory, so a re-run re-attaches.
            _notice(
                f"falnb: {exc}; the result is not recorded, and request {run.request_id} is "
                "kept in memory, so a re-run in this kernel picks it up again"
            )
        else:
            self._forget(call)
        self.usage.add(result)
        if run.request_id is not None:
            self._committed.pop(run.request_id, None)  # its cost is known now
        progress.finished(result)
        return result

    # -- one submission per call, and the ids held in memory -----------------------------------

    def _key(self, call: Call) -> tuple[str | None, str] | None:
        """What identifies a call in memory: its target and fingerprint (None: not recorded)."""
        recorded = call.recorded
        if recorded is None or not recorded.recording:
            return None
        return (call.target, recorded.fingerprint)

    @contextlib.contextmanager
    def _one_submission(self, call: Call) -> Iterator[Call]:
        """Hold the call's submission slot; yields the call with the lock's latest entry.

        Two identical calls at once (two threads, a ``--no-wait`` job and a re-run) take turns
        here: the second finds the first's request pending and re-attaches to it.
        """
        key = self._key(call)
        if key is None:
            yield call
            return
        with self._slots_lock:
            slot = self._slots.setdefault(key, threading.Lock())
        with slot:
            call = replace(call, recorded=self._fresh(call))
            held = self._pending.get(key)
            entry = call.recorded.entry if call.recorded is not None else None
            seed = held[1] if held else entry.seed if entry and entry.status == "pending" else None
            if seed is not None and call.seed is not None and seed != call.seed:
                # Re-attaching to a request sent with another (auto) seed: that seed is pinned.
                call = replace(call, seed=seed, arguments={**call.arguments, "seed": seed})
            yield call

    def _fresh(self, call: Call) -> Lookup | None:
        """The call's lock lookup read again (another thread or kernel may have written it)."""
        recorded = call.recorded
        if recorded is None or not recorded.recording:
            return recorded
        return replace(recorded, entry=self.recorder.lock.get(recorded.fingerprint))

    def _forget(self, call: Call) -> None:
        key = self._key(call)
        if key is not None:
            self._pending.pop(key, None)


def _seedcheck(call: Call) -> SeedCheck | None:
    """The endpoint's seedcheck verdict in the lock, read along with the call's own entry."""
    entry = call.recorded.seedcheck if call.recorded is not None else None
    if entry is None:
        return None
    from falnb.seedchecks import from_entry  # the sweep engine's layer; only when checked

    return from_entry(entry)


def _recorded_seedcheck(found: Any, endpoint: str) -> SeedCheck | None:
    """The seedcheck badge a lock entry was recorded with (None: it had none)."""
    if not isinstance(found, dict) or "verdict" not in found:
        return None
    from falnb.repro.lockfile import Entry
    from falnb.seedchecks import from_entry  # the sweep engine's layer; only when checked

    seed = found.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    return from_entry(Entry(endpoint, {}, "completed", seed=seed, result={"seedcheck": found}))


def _recorded_billing(billing: Any, endpoint: str) -> tuple[float | None, Price | None]:
    """The units and price a lock entry's ``billing`` recorded (each None when absent)."""
    if not isinstance(billing, dict):
        return None, None
    units = billing.get("units")
    if isinstance(units, bool) or not isinstance(units, (int, float)):
        return None, None
    return float(units), Price.from_json({"endpoint_id": endpoint, **billing})


def _still_pending(error: BaseException, request_id: str) -> BaseException:
    """The error to raise for a request left pending: one line that says how to pick it up."""
    if not isinstance(error, (FalError, OSError)):
        return error  # not one of ours (a bug, an interrupt): raised as it is
    which = "the request" if request_id in str(error) else f"the request {request_id}"
    return RequestPendingError(
        f"{error}; {which} is still pending; re-run the cell to pick up its result",
        request_id=request_id,
    )


def _notice(message: str) -> None:
    """One line on stderr (the cell's output), for what the user must know but can wait on."""
    print(message, file=sys.stderr, flush=True)  # noqa: T201


def _notebook_path() -> str | None:
    """The running notebook's path, where Jupyter tells the kernel (``__session__``)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    value = getattr(shell, "user_ns", {}).get("__session__")
    return value if isinstance(value, str) and value.endswith(".ipynb") else None


def _cell_label() -> str | None:
    """``In [n]`` when running in IPython (to name the cell in a record=none miss), else None."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    # The displayhook knows the running cell's prompt number; execution_count does not agree
    # across IPython versions (9 counts the running cell before executing it, 8 after).
    count = getattr(getattr(shell, "displayhook", None), "prompt_count", None)
    return f"In [{count}]" if isinstance(count, int) and count > 0 else None


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "FALNB_TARGET"}


class Job:
    """A request submitted with ``--no-wait``: its live view keeps updating in the notebook.

    ``result()`` blocks for the Result, ``cancel()`` cancels it, ``done()`` tells.
    """

    def __init__(
        self,
        session: Session | None,
        call: Call,
        handle: RequestHandle | None,
        progress: Progress,
        started: float,
    ) -> None:
        self.call = call
        self._session = session
        self._handle = handle
        self._progress = progress
        self._started = started
        self._done = threading.Event()
        self._result: Result | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def done_with(cls, call: Call, result: Result) -> Job:
        job = cls(None, call, None, NullProgress(), time.monotonic())
        job._result = result
        job._done.set()
        return job

    @property
    def request_id(self) -> str | None:
        return self._handle.request_id if self._handle is not None else None

    @property
    def endpoint(self) -> str:
        return self.call.endpoint

    def start(self) -> None:
        assert self._handle is not None
        self._progress.request(self._handle.request_id, self.cancel)
        self._thread = threading.Thread(target=self._follow, name="falnb-job", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        assert self._handle is not None
        assert self._session is not None
        session, handle = self._session, self._handle
        try:
            try:
                run = session.follow(self.call, handle, self._progress, self._started)
            except BaseException as exc:
                error = session.settle(self.call, handle.request_id, exc)
                if error is exc:
                    raise
                raise error from exc
            self._result = session.finish(self.call, run, self._progress)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
            self._error = exc
            cancelled = isinstance(exc, RequestCancelledError)
            self._progress.failed(str(exc), cancelled=cancelled)
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the Result (raises the request's error, or TimeoutError)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.request_id} is still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> str:
        """Cancel the request: ``"CANCELLATION_REQUESTED"`` or ``"ALREADY_COMPLETED"``."""
        if self._handle is None or self.done():
            return "ALREADY_COMPLETED"
        return self._handle.cancel()

    def status(self) -> str:
        if not self.done():
            return "running"
        if isinstance(self._error, RequestPendingError):
            return "pending"  # lost contact: still running (or done) on the server
        if self._error is not None:
            return "cancelled" if _is_cancellation(self._error) else "failed"
        return "done"

    def __repr__(self) -> str:
        # Stable: the request id changes every run, so it stays out of the text.
        return f"<Job {self.endpoint} (--no-wait)>"


def _is_cancellation(error: BaseException) -> bool:
    """Whether a request ended because it was cancelled: the client saw the cancellation, or
    the server answered with fal's ``client_cancelled`` error (a result fetched after it)."""
    if isinstance(error, RequestCancelledError):
        return True
    return isinstance(error, HTTPError) and error.error_type == "client_cancelled"


_default: Session | None = None
_default_lock = threading.Lock()


def default_session() -> Session:
    """The kernel's session, shared by the magics (created on first use)."""
    global _default  # noqa: PLW0603 - one session per kernel
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default


def usage() -> Any:
    """This notebook's requests per endpoint and a total (the rows of ``%fal usage``): a pandas
    DataFrame when pandas is installed, else a list of dicts."""
    return default_session().usage.frame()
