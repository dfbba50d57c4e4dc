"""Session: one request's way from arguments to a :class:`Result`, as a readable pipeline.

Every step is its own method, so reproducibility (lock file, media store, record modes,
pending re-attach) plugs in by overriding or filling the hook steps::

    prepare       look the call up in the lock; resolve the seed          -> Call
    lookup        the recorded Result of a hit (no network at all)        -> Result | None
    submit        put the request in the queue (uploads local inputs), or
                  re-attach to a request the lock says is still pending
    write_down    write the request id to the lock as pending, before waiting
    wait          follow status events into the progress view, get the output
    collect_media download each output file once, into the media store (fetch_media)
    build_result  the Result
    record        write the result, its seed and its media to the lock

Reproducibility (:mod:`falnb.repro`): the record mode comes from ``record=`` / ``--record``,
else ``%fal config record=...``, else ``FALNB_RECORD``, else ``once``. The pinned seed is the
seed given, else the one an earlier run recorded, else a random one for ``seed="auto"``, else
the seed the endpoint reports back.

>>> session = Session()
>>> result = session.run("local/text-to-image", {"prompt": "a red fox"}, seed=42)
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from falnb import _runtime
from falnb.client import HTTPError, RequestCancelledError, RequestHandle, SyncClient
from falnb.client._status import Status
from falnb.repro import Lookup, Recorder, portable, portable_url, resolve_cap, resolve_mode
from falnb.result import Result, decode_data_uri, find_files
from falnb.widgets.progress import NullProgress, Progress

__all__ = ["Call", "Job", "RecordMode", "Session", "SessionConfig", "default_session"]

RecordMode = Literal["once", "refresh", "none", "off"]
RECORD_MODES: tuple[RecordMode, ...] = ("once", "refresh", "none", "off")
TargetChoice = Literal["local", "fal"]
Seed = int | Literal["auto"] | None


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
    recorded: Lookup | None = field(default=None, repr=False, compare=False)
    """What the lock knows about this call (None: nothing is recorded)."""


@dataclass
class _Run:
    """What the wait step learned: the output, its request id, timings and logs."""

    output: dict[str, Any]
    request_id: str | None
    started: float
    logs: list[str] = field(default_factory=list)


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

    @property
    def recorder(self) -> Recorder:
        """The lock file (``falnb.lock`` beside the notebook) and media store this session uses."""
        if self._recorder is None:
            from falnb._settings import key_from_env  # noqa: PLC0415

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
        )
        recorded = self.lookup(call)
        if recorded is not None:
            view.finished(recorded)
            return recorded
        try:
            if call.stream:
                run = self.wait_streaming(call, view)
            elif self.pending_request_id(call):
                run = self.reattach(call, view)
            else:
                run = self.wait(call, view)
        except BaseException as exc:
            self.record_failure(call, exc)
            raise
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
        )
        recorded = self.lookup(call)
        if recorded is not None:
            view.finished(recorded)
            return Job.done_with(call, recorded)
        started = time.monotonic()
        pending = self.pending_request_id(call)
        if pending:
            handle = self.client_for(call.target).get_handle(call.endpoint, pending)
        else:
            handle = self.submit_request(call)
            self.write_down(call, handle.request_id)
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
        target = target or config.target
        if self._uses_embedded(target):
            # Replayed or sent, a call says so: the first cell's saved output is the same.
            from falnb import _embedded  # noqa: PLC0415

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
            recorded=recorded,
        )

    def _uses_embedded(self, target: TargetChoice | None) -> bool:
        if target is not None:
            return target == "local"
        if self._client is not None:
            return False  # a client of the caller's own, not the embedded default
        from falnb._settings import target_from_env  # noqa: PLC0415

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
        return Result(
            endpoint=call.endpoint,
            arguments=call.arguments,
            output=output,
            request_id=entry.request_id,
            seed=entry.seed,
            media=media,
            timings=dict(timings) if isinstance(timings, dict) else {},
            logs=[],
        )

    def pending_request_id(self, call: Call) -> str | None:
        """A request an earlier run submitted and never collected (a kernel crash, a restart)."""
        return call.recorded.pending_request_id if call.recorded is not None else None

    def client_for(self, target: TargetChoice | None) -> SyncClient:
        """The client for ``target``: local = the embedded server, fal = the environment's."""
        if target is None:
            if self._client is None:
                import falnb  # noqa: PLC0415 - the package's default client

                self._client = falnb.default_client()
            return self._client
        if target not in self._clients:
            from falnb import _embedded  # noqa: PLC0415
            from falnb._settings import Target, target_from_env  # noqa: PLC0415

            if target == "local":
                chosen = _embedded.embedded_server().target
            else:
                chosen = target_from_env({"FALNB_TARGET": "fal"} | _env()) or Target.fal()
            self._clients[target] = SyncClient(chosen)
        return self._clients[target]

    def submit_request(self, call: Call) -> RequestHandle:
        """Put ``call`` in the endpoint's queue (local files and images are uploaded first)."""
        return self.client_for(call.target).submit(call.endpoint, call.arguments)

    def write_down(self, call: Call, request_id: str) -> None:
        """Write the request id to the lock as pending before waiting: nothing paid is lost."""
        if call.recorded is not None:
            self.recorder.begin(call.recorded, request_id, seed=call.seed)

    def reattach(self, call: Call, progress: Progress) -> _Run:
        """Collect the pending request of an earlier run instead of submitting again.

        If the server no longer knows the request (404), it is submitted afresh.
        """
        request_id = self.pending_request_id(call)
        assert request_id is not None
        handle = self.client_for(call.target).get_handle(call.endpoint, request_id)
        started = time.monotonic()
        logs: list[str] = []
        progress.request(request_id, handle.cancel)
        try:
            for status in handle.iter_events(with_logs=call.logs):
                logs.extend(_log_lines(status))
                progress.status(status)
            output = handle.get(timeout=call.timeout)
        except HTTPError as exc:
            if exc.status_code != 404:
                raise
            self.record_failure(call, exc)
            return self.wait(call, progress)
        return _Run(output, request_id, started, logs)

    def record_failure(self, call: Call, error: BaseException) -> None:
        """Mark the call's pending request failed or cancelled in the lock (if one was sent)."""
        recorded = call.recorded
        if recorded is None or not recorded.recording:
            return
        entry = self.recorder.lock.get(recorded.fingerprint)
        if entry is None or entry.status != "pending" or not entry.request_id:
            return  # nothing was submitted (e.g. a 422 at submit): nothing to remember
        cancelled = isinstance(error, (KeyboardInterrupt, RequestCancelledError))
        self.recorder.fail(recorded, entry.request_id, error, cancelled=cancelled)

    def wait(self, call: Call, progress: Progress) -> _Run:
        """Submit, follow the status into ``progress``, and return the output.

        A timeout or an interrupt cancels the request remotely (the client does it).
        """
        client = self.client_for(call.target)
        started = time.monotonic()
        logs: list[str] = []
        request_ids: list[str] = []

        def on_enqueue(request_id: str) -> None:
            request_ids.append(request_id)
            self.write_down(call, request_id)
            progress.request(request_id, lambda: client.cancel(call.endpoint, request_id))

        def on_update(status: Status) -> None:
            logs.extend(_log_lines(status))
            progress.status(status)

        output = client.subscribe(
            call.endpoint,
            call.arguments,
            with_logs=call.logs,
            on_enqueue=on_enqueue,
            on_queue_update=on_update,
            timeout=call.timeout,
        )
        return _Run(output, request_ids[0] if request_ids else None, started, logs)

    def wait_streaming(self, call: Call, progress: Progress) -> _Run:
        """Read a streaming endpoint's partial outputs into ``progress``; the last is final."""
        client = self.client_for(call.target)
        started = time.monotonic()
        stream = client.stream(call.endpoint, call.arguments, timeout=call.timeout)
        for partial in stream:
            progress.partial(partial)
        output = stream.final or {}
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
            return _runtime.run(_download(url))
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
        return Result(
            endpoint=call.endpoint,
            arguments=call.arguments,
            output=output,
            request_id=run.request_id,
            seed=seed,
            media=media,
            timings=timings,
            logs=run.logs,
        )

    def record(self, call: Call, result: Result, media: dict[str, bytes] | None = None) -> None:
        """Write the result, its pinned seed and its media to the lock (per ``call.record``).

        ``media`` holds the files already downloaded, by URL (the rest are downloaded).
        """
        recorded = call.recorded
        if recorded is None or not recorded.recording or not result.request_id:
            return
        # Timings and whether a seed was sent: what a replay needs to render exactly as this run.
        self.recorder.complete(
            recorded,
            result.request_id,
            result.json,
            seed=call.seed,
            extra={"seed_sent": call.seed is not None, "timings": result.timings},
            media=media,
        )

    def finish(self, call: Call, run: _Run, progress: Progress) -> Result:
        """The steps after the output arrived: media, Result, record, final view.

        The Result carries loopback URLs port-free, as the lock does (:mod:`falnb.repro.urls`),
        so a run and its replays show the same output.
        """
        downloaded = self.collect_media(run.output, call)
        media = {portable_url(url): data for url, data in downloaded.items()}
        result = self.build_result(call, replace(run, output=portable(run.output)), media)
        self.record(call, result, media)
        progress.finished(result)
        return result


def _notebook_path() -> str | None:
    """The running notebook's path, where Jupyter tells the kernel (``__session__``)."""
    import sys  # noqa: PLC0415

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    value = getattr(shell, "user_ns", {}).get("__session__")
    return value if isinstance(value, str) and value.endswith(".ipynb") else None


def _cell_label() -> str | None:
    """``In [n]`` when running in IPython (to name the cell in a record=none miss), else None."""
    import sys  # noqa: PLC0415

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    # The displayhook knows the running cell's prompt number; execution_count does not agree
    # across IPython versions (9 counts the running cell before executing it, 8 after).
    count = getattr(getattr(shell, "displayhook", None), "prompt_count", None)
    return f"In [{count}]" if isinstance(count, int) and count > 0 else None


def _env() -> dict[str, str]:
    import os  # noqa: PLC0415

    return {k: v for k, v in os.environ.items() if k != "FALNB_TARGET"}


async def _download(url: str) -> bytes:
    import httpx  # noqa: PLC0415

    # Output files are public (fal.media, and the local server's /_cdn): no key is sent.
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=True) as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.content


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
        logs: list[str] = []
        try:
            for status in self._handle.iter_events(with_logs=self.call.logs):
                logs.extend(_log_lines(status))
                self._progress.status(status)
            remaining = None
            if self.call.timeout is not None:
                remaining = max(0.1, self.call.timeout - (time.monotonic() - self._started))
            output = self._handle.get(timeout=remaining)
            run = _Run(output, self._handle.request_id, self._started, logs)
            self._result = self._session.finish(replace(self.call), run, self._progress)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
            self._error = exc
            cancelled = isinstance(exc, RequestCancelledError)
            self._session.record_failure(self.call, exc)
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
        if self._error is not None:
            return "failed" if "cancel" not in str(self._error) else "cancelled"
        return "done"

    def __repr__(self) -> str:
        # Stable: the request id changes every run, so it stays out of the text.
        return f"<Job {self.endpoint} (--no-wait)>"


_default: Session | None = None
_default_lock = threading.Lock()


def default_session() -> Session:
    """The kernel's session, shared by the magics (created on first use)."""
    global _default  # noqa: PLW0603 - one session per kernel
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default
