"""``falnb.sweep`` and ``falnb.map`` (and their async twins): the Python front of sweeps.

::

    results = falnb.sweep("local/text-to-image", {"prompt": "a fox"}, seed=[1, 2, 3])
    results = falnb.map("local/echo", [{"n": 1}, {"n": 2}])
    results = await falnb.sweep_async("local/echo", {}, seed=[1, 2])

Each builds the jobs (:func:`falnb.sweeps.plan`), picks the live view this front end can show
and runs them through the kernel's session, as ``%%fal`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from falnb._fronts import front
from falnb.sweeps import DEFAULT_CONCURRENCY, Sweep, SweepJob, SweepResults, plan

if TYPE_CHECKING:
    from falnb._settings import TargetName as TargetChoice
    from falnb.session import RecordMode, Session

__all__ = ["map", "map_async", "sweep", "sweep_async"]


P = ParamSpec("P")
R = TypeVar("R")


def _front(
    parameters: Callable[P, Sweep],
) -> Callable[[Callable[[Sweep], R]], Callable[P, R]]:
    """A front (blocking, or awaited) whose parameters are those of ``parameters``, defined
    once: ``parameters`` builds the sweep, the decorated function runs it."""

    def decorate(run: Callable[[Sweep], R]) -> Callable[P, R]:
        def invoke(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(parameters(*args, **kwargs))

        return front(run, invoke, parameters)  # type: ignore[no-any-return]

    return decorate


def _sweep(
    endpoint: str | Sequence[str],
    base: Mapping[str, Any] | None = None,
    /,
    *,
    zip: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    record: RecordMode | None = None,
    target: TargetChoice | None = None,
    quiet: bool = False,
    session: Session | None = None,
    **axes: Sequence[Any],
) -> Sweep:
    # sweep's parameters, for both fronts.
    jobs = plan(endpoint, dict(base or {}), axes, zip=zip)
    return _build(jobs, concurrency, timeout, record, target, quiet, session)


def _map(
    endpoint: str,
    arguments: Iterable[Mapping[str, Any]],
    /,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    record: RecordMode | None = None,
    target: TargetChoice | None = None,
    quiet: bool = False,
    session: Session | None = None,
) -> Sweep:
    # map's parameters, for both fronts.
    jobs = [SweepJob(endpoint.strip("/"), dict(a)) for a in arguments]
    return _build(jobs, concurrency, timeout, record, target, quiet, session)


@_front(_sweep)
def sweep(engine: Sweep) -> SweepResults:
    """Run ``endpoint`` over every combination of the ``axes`` (``seed=[1, 2]``,
    ``prompt=["a fox", "a wolf"]``: 4 jobs; ``zip=True`` pairs them: 2), on top of ``base``.

    A list of endpoints (or ``endpoint=[...]`` among the axes) compares models on the same
    inputs. Returns the outcomes in job order, failures in place.
    """
    return engine.run()


@_front(_map)
def map(engine: Sweep) -> SweepResults:
    """Run ``endpoint`` once per arguments dict; the outcomes come back in the same order."""
    return engine.run()


@_front(_sweep)
async def sweep_async(engine: Sweep) -> SweepResults:
    """:func:`sweep`, awaited; cancelling the awaiting task cancels every outstanding job."""
    return await _run_async(engine)


@_front(_map)
async def map_async(engine: Sweep) -> SweepResults:
    """:func:`map`, awaited; cancelling the awaiting task cancels every outstanding job."""
    return await _run_async(engine)


def _build(  # noqa: PLR0917 - sweep's and map's options, passed on in the order they have
    jobs: list[SweepJob],
    concurrency: int,
    timeout: float | None,
    record: RecordMode | None,
    target: TargetChoice | None,
    quiet: bool,
    session: Session | None,
) -> Sweep:
    from falnb.session import default_session  # falnb imports stay light
    from falnb.widgets.sweep import make_sweep_view

    return Sweep(
        session or default_session(),
        jobs,
        concurrency=concurrency,
        timeout=timeout,
        record=record,
        target=target,
        view=make_sweep_view(quiet=quiet),
    )


async def _run_async(engine: Sweep) -> SweepResults:
    # The engine's workers are threads that block on falnb's own loop; its wait runs in a
    # thread too, so the caller's loop stays free.
    future = asyncio.get_running_loop().run_in_executor(None, engine.run)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        engine.cancel()
        raise
