"""Run many jobs as one: a sweep's plan, its engine, its live state and its result set.

A sweep is a list of jobs (endpoint + arguments + the swept values that label them), run
with bounded concurrency through the *same* per-call path as one ``%%fal`` call
(:meth:`falnb.session.Session.run`: lock lookup, pending written before waiting, wait,
media, record). So every reproducibility rule holds per job: an interrupted or crashed sweep
loses no paid job, and a re-run replays what is recorded and submits only what is missing.

::

    jobs = plan("local/echo", {"prompt": "a fox"}, {"seed": [1, 2], "steps": [4, 8]})
    results = Sweep(Session(), jobs, concurrency=8).run()
    results[0].seed, results.failures

A 429 that outlasts the client's own retries slows the sweep down (the concurrency halves and
the job waits ``Retry-After``) instead of failing it: a 429 means the request was not
accepted, so trying it again pays nothing twice. Cancel (and a kernel interrupt) cancels every
outstanding job on the server; jobs not yet submitted are never sent.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from falnb import _comm_pump
from falnb._display import Bundle, Displayed
from falnb.client import HTTPError, RateLimitedError, RequestCancelledError

if TYPE_CHECKING:
    from falnb._settings import TargetName as TargetChoice
    from falnb.client._status import Status
    from falnb.result import Result
    from falnb.session import RecordMode, Session

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Failed",
    "Sweep",
    "SweepJob",
    "SweepResults",
    "SweepState",
    "SweepView",
    "plan",
    "split_axes",
]

#: Jobs in flight at once unless told otherwise: enough to keep a few runners busy, few
#: enough to stay under fal's per-key concurrency limit.
DEFAULT_CONCURRENCY = 8
#: How long to back off after a 429 that carried no Retry-After.
DEFAULT_BACKOFF = 1.0
#: How long an interrupted sweep waits for its cancelled jobs to settle before giving up.
CANCEL_GRACE = 30.0
ENDPOINT_AXIS = "endpoint"

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class SweepJob:
    """One job of a sweep: what is sent, and the swept values that label it in views."""

    endpoint: str
    arguments: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """``seed=1 · prompt=a fox`` (the endpoint too when it is an axis)."""
        return " · ".join(f"{k}={v}" for k, v in self.labels.items())


def plan(
    endpoint: str | Sequence[str],
    base: Mapping[str, Any],
    axes: Mapping[str, Sequence[Any]],
    *,
    zip: bool = False,
) -> list[SweepJob]:
    """The jobs of a sweep: the cartesian product of ``axes`` (or, with ``zip``, the values
    paired in order) over the ``base`` arguments. ``endpoint`` may be a list, or ``axes`` may
    hold an ``endpoint`` list: the endpoint is then an axis (the outermost one).

    >>> [j.arguments for j in plan("local/echo", {"n": 1}, {"seed": [1, 2]})]
    [{'n': 1, 'seed': 1}, {'n': 1, 'seed': 2}]
    """
    named = dict(axes)
    endpoints: list[str] = []
    if not isinstance(endpoint, str):
        endpoints = [str(e) for e in endpoint]
    if ENDPOINT_AXIS in named:
        if endpoints:
            raise ValueError("give the endpoints once: as the endpoint, or as an endpoint axis")
        endpoints = [str(e) for e in named.pop(ENDPOINT_AXIS)]
    for key, values in named.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(  # noqa: TRY004 - bad input: one line, like every other
                f"the swept key {key} needs a list of values, not {values!r}"
            )
        if not values:
            raise ValueError(f"the swept key {key} has an empty list of values")
    if isinstance(endpoint, str) and not endpoints:
        endpoints = [endpoint]
    if not endpoints:
        raise ValueError("a sweep needs at least one endpoint")
    endpoint_is_axis = len(endpoints) > 1 or not isinstance(endpoint, str)
    keys = list(named)
    if zip:
        lengths = {len(v) for v in named.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in named.items())
            raise ValueError(f"--zip pairs values in order, so the lists must be as long ({sizes})")
        combos: list[tuple[Any, ...]] = list(builtins_zip(*named.values())) if keys else [()]
    else:
        combos = list(itertools.product(*named.values()))
    jobs: list[SweepJob] = []
    for chosen in endpoints:
        for values in combos:
            swept = dict(builtins_zip(keys, values, strict=True))
            labels = ({ENDPOINT_AXIS: chosen} if endpoint_is_axis else {}) | swept
            jobs.append(SweepJob(chosen.strip("/"), {**base, **swept}, labels))
    return jobs


def split_axes(
    arguments: Mapping[str, Any], keys: Sequence[str] | None = None
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The base arguments and the swept axes of a ``--sweep`` body: the list-valued keys, or
    only ``keys`` when named (an endpoint that takes a list, e.g. ``image_urls``, keeps it).

    >>> split_axes({"seed": [1, 2], "prompt": "a fox"})
    ({'prompt': 'a fox'}, {'seed': [1, 2]})
    """
    if keys:
        missing = [k for k in keys if k not in arguments]
        if missing:
            raise ValueError(f"--sweep names {', '.join(missing)}, which the arguments lack")
        not_lists = [k for k in keys if not isinstance(arguments[k], list)]
        if not_lists:
            raise ValueError(f"--sweep needs a list of values for {', '.join(not_lists)}")
        chosen = list(keys)
    else:
        chosen = [k for k, v in arguments.items() if isinstance(v, list)]
    base = {k: v for k, v in arguments.items() if k not in chosen}
    return base, {k: list(arguments[k]) for k in chosen}


builtins_zip = zip  # ``plan``'s ``zip`` parameter shadows the builtin inside it


class Failed:
    """A job that ended without a result, in its place in a :class:`SweepResults`.

    ``error`` is what it ended with (``cancelled`` tells a cancel apart); it is falsy, so
    ``[r for r in results if r]`` keeps the results.
    """

    def __init__(self, job: SweepJob, error: BaseException, *, request_id: str | None = None):
        self.job = job
        self.error = error
        self.request_id = request_id or getattr(error, "request_id", None)

    @property
    def endpoint(self) -> str:
        return self.job.endpoint

    @property
    def arguments(self) -> dict[str, Any]:
        return self.job.arguments

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, (RequestCancelledError, KeyboardInterrupt))

    @property
    def message(self) -> str:
        """The error in one line: the server's own words where it gave them."""
        from falnb.repro.urls import scrub

        detail = getattr(self.error, "detail", None)
        if isinstance(self.error, HTTPError) and isinstance(detail, str) and detail:
            return scrub(detail)
        # Saved in the notebook: no loopback port (it differs per run).
        return scrub(str(self.error)) or type(self.error).__name__

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        word = "cancelled" if self.cancelled else "failed"
        return f"<Failed {self.job.endpoint} {self.job.label()}: {word}: {self.message}>"


class SweepResults(Displayed, Sequence["Result | Failed"]):
    """A sweep's outcomes in job order: a :class:`~falnb.result.Result` or a :class:`Failed`
    for each job. ``results[i]``, ``len``, iteration; ``ok`` / ``failures`` split them;
    ``jobs[i]`` says what job ``i`` was (its labels name the swept values)."""

    def __init__(
        self,
        jobs: Sequence[SweepJob],
        outcomes: Sequence[Result | Failed],
        *,
        badges: Mapping[str, str] | None = None,
    ) -> None:
        if len(jobs) != len(outcomes):
            raise ValueError("one outcome per job")
        self.jobs = list(jobs)
        self._outcomes = list(outcomes)
        #: Each endpoint's seedcheck badge (HTML), from the lock, shown with the grid.
        self.badges = dict(badges or {})

    @overload
    def __getitem__(self, index: int) -> Result | Failed: ...
    @overload
    def __getitem__(self, index: slice) -> list[Result | Failed]: ...
    def __getitem__(self, index: int | slice) -> Result | Failed | list[Result | Failed]:
        return self._outcomes[index]

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[Result | Failed]:
        return iter(self._outcomes)

    @property
    def ok(self) -> list[Result]:
        """The results, in job order (failures left out)."""
        return [o for o in self._outcomes if not isinstance(o, Failed)]

    @property
    def failures(self) -> list[Failed]:
        return [o for o in self._outcomes if isinstance(o, Failed)]

    def raise_for_failures(self) -> SweepResults:
        """Raise the first failure's error (with how many failed) if any job failed."""
        failures = self.failures
        if failures:
            first = failures[0]
            raise RuntimeError(
                f"{len(failures)} of {len(self)} jobs failed; the first, "
                f"{first.job.label() or first.endpoint}: {first.message}"
            ) from first.error
        return self

    def table(self) -> Any:
        """One row per job: swept values, arguments, seed, request id, status, error, timings
        and output URLs; a pandas DataFrame when pandas is installed, else a list of dicts."""
        rows = [_row(index, job, o) for index, (job, o) in enumerate(builtins_zip(self.jobs, self))]
        try:
            import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional (falnb[pandas])
        except ImportError:
            return rows
        return pd.DataFrame(rows).set_index("job")

    def _bundle(self) -> Bundle:
        from falnb.render_grid import grid_bundle  # Pillow only when shown

        return grid_bundle(self)

    def summary(self) -> str:
        counts = collections.Counter(
            ("cancelled" if o.cancelled else "failed") if isinstance(o, Failed) else "done"
            for o in self._outcomes
        )
        parts = [f"{counts[k]} {k}" for k in ("done", "failed", "cancelled") if counts[k]]
        return f"{len(self)} jobs: {', '.join(parts) or 'none'}"

    def __repr__(self) -> str:
        return f"<SweepResults {self.summary()}>"


def _row(index: int, job: SweepJob, outcome: Result | Failed) -> dict[str, Any]:
    from falnb.result import find_files

    row: dict[str, Any] = {"job": index, "endpoint": job.endpoint}
    row.update(job.labels)
    row["arguments"] = job.arguments
    row["request_id"] = outcome.request_id
    if isinstance(outcome, Failed):
        row["seed"] = job.arguments.get("seed")
        row["status"] = "cancelled" if outcome.cancelled else "failed"
        row["error"] = outcome.message
        row["seconds"] = None
        row["urls"] = []
    else:
        row["seed"] = outcome.seed
        row["status"] = "done"
        row["error"] = None
        row["seconds"] = outcome.timings.get("total")
        row["urls"] = [str(f["url"]) for _, f in find_files(outcome.json)]
    return row


@dataclass
class SweepState:
    """What a sweep's live view shows (pure data; the engine updates it under its lock)."""

    title: str
    statuses: list[JobStatus]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    finished_at: list[float] = field(default_factory=list)
    concurrency: int = DEFAULT_CONCURRENCY
    throttled: int = 0
    """429s that slowed the sweep down."""

    def count(self, status: JobStatus) -> int:
        return self.statuses.count(status)

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def settled(self) -> int:
        return self.total - self.count("queued") - self.count("running")

    def throughput(self) -> float:
        """Jobs settled per second, over the sweep so far."""
        elapsed = (self.ended or time.monotonic()) - self.started
        return len(self.finished_at) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds until every job has settled, at the throughput so far (None: unknown)."""
        rate = self.throughput()
        left = self.count("queued") + self.count("running")
        return left / rate if rate > 0 else None

    def line(self) -> str:
        """One text line for terminals and nbclient."""
        parts = [self.title, f"{self.count('done')}/{self.total} done"]
        for status in ("running", "queued", "failed", "cancelled"):
            number = self.count(status)
            if number:
                parts.append(f"{number} {status}")
        parts.append(f"{self.throughput():.1f} jobs/s")
        eta = self.eta()
        if self.ended is None and eta is not None and self.settled < self.total:
            parts.append(f"ETA {eta:.0f} s")
        if self.throttled:
            parts.append(f"rate limited {self.throttled}x (concurrency {self.concurrency})")
        parts.append(f"{(self.ended or time.monotonic()) - self.started:.1f} s")
        return " · ".join(parts)


class SweepView(Protocol):
    """What the engine tells a sweep's live view (:mod:`falnb.widgets.sweep` has them)."""

    def started(self, state: SweepState, cancel: Callable[[], object]) -> None: ...
    def changed(self, state: SweepState) -> None: ...
    def job_finished(self, index: int, outcome: Result | Failed) -> None: ...
    def ended(self, state: SweepState, results: SweepResults) -> None: ...


class NullSweepView:
    """No live view."""

    def started(self, state: SweepState, cancel: Callable[[], object]) -> None:  # noqa: ARG002 - protocol signature
        return None

    def changed(self, state: SweepState) -> None:  # noqa: ARG002 - protocol signature
        return None

    def job_finished(self, index: int, outcome: Result | Failed) -> None:  # noqa: ARG002 - protocol signature
        return None

    def ended(self, state: SweepState, results: SweepResults) -> None:  # noqa: ARG002 - protocol signature
        return None


class _JobProgress:
    """One job's progress hook (the Session's Progress protocol): holds its remote cancel."""

    def __init__(self, sweep: Sweep, index: int) -> None:
        self._sweep = sweep
        self._index = index

    def request(self, request_id: str, cancel: Callable[[], object] | None) -> None:
        self._sweep._submitted(self._index, request_id, cancel)

    # A job's own states reach the sweep through its outcome; only its cancel is needed here.
    def status(self, status: Status) -> None:  # noqa: ARG002 - protocol signature
        return None

    def partial(self, output: dict[str, Any]) -> None:  # noqa: ARG002 - protocol signature
        return None

    def finished(self, result: Result) -> None:  # noqa: ARG002 - protocol signature
        return None

    def failed(self, message: str, *, cancelled: bool = False) -> None:  # noqa: ARG002 - protocol signature
        return None


class Sweep:
    """Run ``jobs`` through ``session``, at most ``concurrency`` at a time; :meth:`run` blocks
    until every job settled and returns their outcomes in job order."""

    def __init__(
        self,
        session: Session,
        jobs: Sequence[SweepJob],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | None = None,
        record: RecordMode | None = None,
        target: TargetChoice | None = None,
        view: SweepView | None = None,
        title: str = "",
        validate: bool = True,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
        self.session = session
        self.jobs = list(jobs)
        self.max_concurrency = concurrency
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "record": record,
            "target": target,
            "validate": validate,
        }
        self.view: SweepView = view or NullSweepView()
        endpoints = list(dict.fromkeys(j.endpoint for j in self.jobs))
        self.state = SweepState(
            title or f"sweep {' / '.join(endpoints[:3])}",
            ["queued"] * len(self.jobs),
            concurrency=concurrency,
        )
        self._outcomes: list[Result | Failed | None] = [None] * len(self.jobs)
        self._queue: collections.deque[int] = collections.deque(range(len(self.jobs)))
        self._cancels: dict[int, Callable[[], object]] = {}
        self._request_ids: dict[int, str] = {}
        self._running = 0
        self._left = len(self.jobs)
        self._paused_until = 0.0
        self._cancelled = False
        self._cond = threading.Condition()
        self._settled = threading.Event()

    @property
    def submitted(self) -> dict[int, str]:
        """The request id of every job submitted so far, by job index."""
        with self._cond:
            return dict(self._request_ids)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> SweepResults:
        """Run every job; a KeyboardInterrupt cancels all outstanding ones, then is re-raised.

        An estimate above the session's ``confirm_above`` raises
        :class:`~falnb.pricing.ConfirmationRequiredError` first, with nothing sent.
        """
        self.session.confirm_many(
            [(job.endpoint, job.arguments) for job in self.jobs],
            record=self._options["record"],
            target=self._options["target"],
        )
        self.view.started(self.state, self.cancel)
        if not self.jobs:
            self._settled.set()
        workers = [
            threading.Thread(target=self._work, name=f"falnb-sweep-{i}", daemon=True)
            for i in range(min(self.max_concurrency, len(self.jobs)))
        ]
        for worker in workers:
            worker.start()
        try:
            self._wait()
        except KeyboardInterrupt:
            self.cancel()
            self._settled.wait(CANCEL_GRACE)
            self._end()
            raise
        for worker in workers:
            worker.join()
        return self._end()

    def _wait(self) -> None:
        """Block until every job settled; on a kernel's main thread, the view's Cancel click
        is handled meanwhile (:mod:`falnb._comm_pump`)."""
        while not self._settled.wait(0.05):
            if _comm_pump.wanted():
                _comm_pump.pump()
            # Views throttle themselves; this tick keeps counts, throughput and ETA fresh
            # between jobs that end (a burst of changes would otherwise leave a stale view).
            self.view.changed(self.state)

    def _end(self) -> SweepResults:
        with self._cond:
            self.state.ended = time.monotonic()
            outcomes = [
                o if o is not None else Failed(job, RequestCancelledError("never submitted"))
                for job, o in builtins_zip(self.jobs, self._outcomes, strict=True)
            ]
        results = SweepResults(self.jobs, outcomes, badges=self._badges())
        self.view.ended(self.state, results)
        return results

    def _badges(self) -> dict[str, str]:
        """The seedcheck verdicts the lock holds for this sweep's endpoints, as badges."""
        if self._options.get("record") == "off":
            return {}
        from falnb.seedchecks import recorded  # seedcheck runs sweeps

        found = {e: recorded(self.session, e) for e in dict.fromkeys(j.endpoint for j in self.jobs)}
        return {e: check.badge() for e, check in found.items() if check is not None}

    def cancel(self) -> None:
        """Cancel the sweep: jobs not yet sent are never sent, and every job in flight is
        cancelled on the server (safe from any thread, more than once)."""
        with self._cond:
            self._cancelled = True
            cancels = list(self._cancels.values())
            self._cancels.clear()
            for index in self._queue:
                self._settle(index, Failed(self.jobs[index], RequestCancelledError("cancelled")))
            self._queue.clear()
            self._cond.notify_all()
        self._cancel_remote(cancels)

    @staticmethod
    def _cancel_remote(cancels: list[Callable[[], object]]) -> None:
        def one(cancel: Callable[[], object]) -> None:
            # Best effort: the job's own wait reports how it ended.
            with contextlib.suppress(Exception):
                cancel()

        # In parallel: a hundred cancels one after another would take a hundred round trips.
        threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in cancels]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CANCEL_GRACE)

    # -- the workers -----------------------------------------------------------------------

    def _next(self) -> int | None:
        """The next job to run, once a slot is free under the current limit (None: no more)."""
        with self._cond:
            while True:
                if self._cancelled or not self._queue:
                    return None
                wait = self._paused_until - time.monotonic()
                if wait <= 0 and self._running < self.state.concurrency:
                    index = self._queue.popleft()
                    self._running += 1
                    self.state.statuses[index] = "running"
                    break
                self._cond.wait(wait if wait > 0 else None)
        self.view.changed(self.state)
        return index

    def _work(self) -> None:
        while (index := self._next()) is not None:
            job = self.jobs[index]
            outcome: Result | Failed | None
            try:
                outcome = self.session.run(
                    job.endpoint,
                    job.arguments,
                    logs=False,
                    progress=_JobProgress(self, index),
                    **self._options,
                )
            except RateLimitedError as exc:
                outcome = self._throttle(index, exc)
            except Exception as exc:  # noqa: BLE001 - kept in its place, with its error
                outcome = Failed(job, exc, request_id=self._request_ids.get(index))
            with self._cond:
                self._running -= 1
                self._cancels.pop(index, None)
                if outcome is not None:
                    if not isinstance(outcome, Failed) and self.state.concurrency < (
                        self.max_concurrency
                    ):
                        self.state.concurrency += 1  # recover from a 429, a job at a time
                    self._settle(index, outcome)
                self._cond.notify_all()
            self.view.changed(self.state)
            if outcome is not None:
                self.view.job_finished(index, outcome)

    def _throttle(self, index: int, error: RateLimitedError) -> Failed | None:
        """A 429 the client's retries did not outlast: the job was not accepted, so it goes
        back to the front of the queue, the concurrency halves and new jobs wait."""
        with self._cond:
            if self._cancelled:
                return Failed(self.jobs[index], RequestCancelledError("cancelled"))
            self.state.throttled += 1
            self.state.concurrency = max(1, self.state.concurrency // 2)
            pause = error.retry_after if error.retry_after is not None else DEFAULT_BACKOFF
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            self._queue.appendleft(index)
            self.state.statuses[index] = "queued"
        return None

    def _submitted(self, index: int, request_id: str, cancel: Callable[[], object] | None) -> None:
        with self._cond:
            self._request_ids[index] = request_id
            cancelled = self._cancelled
            if cancel is not None and not cancelled:
                self._cancels[index] = cancel
        if cancelled and cancel is not None:
            self._cancel_remote([cancel])  # cancelled while it was being submitted

    def _settle(self, index: int, outcome: Result | Failed) -> None:
        """Record a job's outcome (under the lock)."""
        self._outcomes[index] = outcome
        if isinstance(outcome, Failed):
            self.state.statuses[index] = "cancelled" if outcome.cancelled else "failed"
        else:
            self.state.statuses[index] = "done"
        self.state.finished_at.append(time.monotonic())
        self._left -= 1
        if self._left == 0:
            self._settled.set()
