"""Sweeps over the local server, under injected faults: order, failures in place, re-runs
that submit only what is missing, 429s that slow the sweep down, and cancel of every job.

The server's journal is the witness of what was submitted (and so would be paid).
"""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import falnb
from falnb import RetryPolicy, SyncClient, _runtime
from falnb.local import LocalServer
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.session import Session
from falnb.sweeps import Failed, Sweep, SweepJob, SweepResults, plan

pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture
def recorder(tmp_path: Path, server: LocalServer) -> Recorder:
    return Recorder(LockFile(tmp_path / "falnb.lock", secrets=[server.key]), MediaStore(tmp_path))


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


@pytest.fixture
def session(client: SyncClient, recorder: Recorder) -> Session:
    return Session(client, recorder=recorder)


def accepted(server: LocalServer, endpoint: str | None = None) -> int:
    return len(server.journal.accepted_submissions(endpoint))


def seeds(results: SweepResults) -> list[Any]:
    return [r.json.get("seed") if r else None for r in results]


# -- the plan ---------------------------------------------------------------------------------


def test_the_plan_is_a_cartesian_product_in_order_or_zipped_pairs() -> None:
    jobs = plan("local/echo", {"n": 1}, {"seed": [1, 2], "prompt": ["fox", "wolf"]})
    assert [j.arguments for j in jobs] == [
        {"n": 1, "seed": 1, "prompt": "fox"},
        {"n": 1, "seed": 1, "prompt": "wolf"},
        {"n": 1, "seed": 2, "prompt": "fox"},
        {"n": 1, "seed": 2, "prompt": "wolf"},
    ]
    assert jobs[1].labels == {"seed": 1, "prompt": "wolf"}
    zipped = plan("local/echo", {}, {"seed": [1, 2], "prompt": ["fox", "wolf"]}, zip=True)
    assert [j.arguments for j in zipped] == [
        {"seed": 1, "prompt": "fox"},
        {"seed": 2, "prompt": "wolf"},
    ]
    with pytest.raises(ValueError, match=r"as long \(seed: 2, prompt: 3\)"):
        plan("local/echo", {}, {"seed": [1, 2], "prompt": ["a", "b", "c"]}, zip=True)


def test_the_endpoint_is_an_axis_given_as_a_list_or_as_a_swept_key() -> None:
    by_list = plan(["local/echo", "local/slow"], {"duration": 0}, {"seed": [1, 2]})
    by_key = plan(
        "ignored", {"duration": 0}, {"endpoint": ["local/echo", "local/slow"], "seed": [1, 2]}
    )
    for jobs in (by_list, by_key):
        assert [(j.endpoint, j.arguments["seed"]) for j in jobs] == [
            ("local/echo", 1),
            ("local/echo", 2),
            ("local/slow", 1),
            ("local/slow", 2),
        ]
        assert jobs[2].labels == {"endpoint": "local/slow", "seed": 1}
    with pytest.raises(ValueError, match="needs a list of values"):
        plan("local/echo", {}, {"seed": "1"})
    with pytest.raises(ValueError, match="empty list"):
        plan("local/echo", {}, {"seed": []})


# -- at scale, under faults -------------------------------------------------------------------


def test_a_200_job_sweep_under_faults_completes_with_every_result_in_order(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    # Gateway 503s before the app (retried: nothing was accepted) and status polls that fail.
    server.faults.add("status=503;ingress", role="queue", method="POST", rate=0.2)
    server.faults.add("reset", path_contains="/status", rate=0.1)
    jobs = plan("local/echo", {"prompt": "a fox"}, {"seed": list(range(200))})
    results = Sweep(session, jobs, concurrency=16).run()
    assert len(results) == 200
    assert results.failures == []
    assert seeds(results) == list(range(200))
    assert [r.arguments["seed"] for r in results] == list(range(200))
    assert sum(rule.fired for rule in server.faults.rules) > 0
    # One paid submission per job, each recorded in the lock.
    assert accepted(server, "local/echo") == 200
    assert sum(e.status == "completed" for e in recorder.lock.entries().values()) == 200


def test_failures_come_back_in_place_with_their_errors_and_lose_no_other_result(
    server: LocalServer, session: Session
) -> None:
    jobs = [
        SweepJob("local/fail", {"seed": i, "detail": f"job {i} broke"})
        if i % 10 == 3
        else SweepJob("local/echo", {"seed": i})
        for i in range(60)
    ]
    results = Sweep(session, jobs, concurrency=8).run()
    failed = [i for i, r in enumerate(results) if isinstance(r, Failed)]
    assert failed == [i for i in range(60) if i % 10 == 3]
    for index in failed:
        outcome = results[index]
        assert isinstance(outcome, Failed)
        assert not outcome
        assert f"job {index} broke" in outcome.message
        assert outcome.request_id  # it was accepted: the id says which request failed
    assert [r.json["seed"] for r in results.ok] == [i for i in range(60) if i % 10 != 3]
    assert "54 done, 6 failed" in results.summary()
    with pytest.raises(RuntimeError, match="6 of 60 jobs failed"):
        results.raise_for_failures()


def test_a_rerun_after_partial_failure_submits_only_the_missing_jobs(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    # The app's 500s before the queue (with a request id, so not retried): 7 jobs fail.
    server.faults.add("status=500", role="queue", method="POST", times=7)
    jobs = plan("local/echo", {"prompt": "a fox"}, {"seed": list(range(40))})
    first = Sweep(session, jobs, concurrency=8).run()
    assert len(first.failures) == 7
    assert accepted(server) == 33
    server.journal.clear()
    again = Sweep(Session(SyncClient(server.target), recorder=recorder), jobs).run()
    assert again.failures == []
    assert seeds(again) == list(range(40))
    assert accepted(server) == 7  # the 33 recorded ones replay from the lock


def test_jobs_left_pending_by_a_lost_server_are_reattached_not_paid_again(
    server: LocalServer, session: Session, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "0.5")
    # Every result fetch is refused for a while: the wait gives up, the job stays pending.
    rule = server.faults.add("reset", path_contains="/requests/", method="GET", duration=3.0)
    jobs = plan("local/echo", {}, {"seed": list(range(12))})
    first = Sweep(session, jobs, concurrency=12).run()
    pending = [r for r in first if isinstance(r, Failed) and "still pending" in r.message]
    assert pending
    assert accepted(server) == 12
    while not rule.healed():
        threading.Event().wait(0.05)
    server.journal.clear()
    again = Sweep(session, jobs).run()
    assert again.failures == []
    assert seeds(again) == list(range(12))
    assert accepted(server) == 0


def test_429s_that_outlast_the_retries_slow_the_sweep_down_instead_of_failing_it(
    server: LocalServer, recorder: Recorder
) -> None:
    # No client retries, so every 429 reaches the sweep, which must back off and try again.
    impatient = SyncClient(server.target, retry=RetryPolicy(max_attempts=1))
    server.faults.add("status=429;retry_after=0.2", role="queue", method="POST", times=6)
    jobs = plan("local/echo", {}, {"seed": list(range(30))})
    engine = Sweep(Session(impatient, recorder=recorder), jobs, concurrency=8)
    results = engine.run()
    assert results.failures == []
    assert seeds(results) == list(range(30))
    assert engine.state.throttled >= 1
    assert accepted(server) == 30
    impatient.close()


def test_cancel_stops_every_outstanding_job_on_the_server_and_sends_no_more(
    server: LocalServer, session: Session, until: Callable[..., Any]
) -> None:
    jobs = plan("local/slow", {"duration": 20, "steps": 40}, {"seed": list(range(20))})
    engine = Sweep(session, jobs, concurrency=4)
    done: list[SweepResults] = []
    runner = threading.Thread(target=lambda: done.append(engine.run()))
    runner.start()
    until(lambda: len(engine._request_ids) == 4, what="4 jobs submitted")
    engine.cancel()
    runner.join(30)
    assert done, "the sweep did not end after cancel"
    [results] = done
    assert all(isinstance(r, Failed) and r.cancelled for r in results)
    assert accepted(server, "local/slow") == 4  # the 16 queued ones were never sent
    cancels = server.journal.entries(method="PUT", path_contains="/cancel")
    assert {e.path.split("/requests/")[1].split("/")[0] for e in cancels} == set(
        engine._request_ids.values()
    )


def test_a_keyboard_interrupt_cancels_every_outstanding_job(
    server: LocalServer, session: Session, until: Callable[..., Any]
) -> None:
    jobs = plan("local/slow", {"duration": 20, "steps": 40}, {"seed": list(range(10))})
    engine = Sweep(session, jobs, concurrency=3)

    def interrupt() -> None:
        until(lambda: len(engine._request_ids) == 3, what="3 jobs submitted")
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    assert accepted(server, "local/slow") == 3
    cancelled = server.journal.entries(method="PUT", path_contains="/cancel")
    assert len(cancelled) == 3
    assert engine.state.count("cancelled") == 10


def test_status_streams_hand_their_connection_back_for_the_next_request(
    server: LocalServer, recorder: Recorder
) -> None:
    # A status stream closed as soon as COMPLETED is read (before the server's end of it)
    # loses its connection: each job then opened a new TCP connection on both sides.
    ports: set[int] = set()

    async def seen(response: httpx.Response) -> None:
        ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    http = httpx.AsyncClient(event_hooks={"response": [seen]})
    with SyncClient(server.target, http=http) as client:
        jobs = plan("local/echo", {}, {"seed": list(range(10))})
        results = Sweep(Session(client, recorder=recorder), jobs, concurrency=1).run()
    _runtime.run(http.aclose())
    assert results.failures == []
    streams = server.journal.entries(method="GET", path_contains="/status/stream")
    assert len(streams) == 10
    assert len(ports) <= 2, f"{len(ports)} connections for 10 jobs one after another"


# -- the Python front ---------------------------------------------------------------------------


def test_falnb_sweep_and_map_return_ordered_results(server: LocalServer, session: Session) -> None:
    results = falnb.sweep(
        "local/echo", {"prompt": "a fox"}, seed=[1, 2], n=[3, 4], session=session, quiet=True
    )
    assert [(r.json["seed"], r.json["n"]) for r in results] == [(1, 3), (1, 4), (2, 3), (2, 4)]
    mapped = falnb.map("local/echo", [{"k": i} for i in range(5)], session=session, quiet=True)
    assert [r.json["k"] for r in mapped] == [0, 1, 2, 3, 4]
    assert accepted(server) == 9


def test_the_async_twins_and_cancelling_the_awaiting_task(
    server: LocalServer, session: Session
) -> None:
    async def main() -> tuple[SweepResults, int]:
        results = await falnb.sweep_async(
            "local/echo", {}, seed=[5, 6, 7], session=session, quiet=True
        )
        task = asyncio.ensure_future(
            falnb.map_async(
                "local/slow",
                [{"duration": 20, "seed": i} for i in range(4)],
                concurrency=2,
                session=session,
                quiet=True,
            )
        )
        while len(server.journal.accepted_submissions("local/slow")) < 2:  # noqa: ASYNC110 - the journal has no event to await
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return results, len(server.journal.accepted_submissions("local/slow"))

    results, slow_accepted = asyncio.run(main())
    assert seeds(results) == [5, 6, 7]
    assert slow_accepted == 2
    cancels = server.journal.entries(method="PUT", path_contains="/cancel")
    assert len(cancels) == 2


def test_bad_sweep_input_is_one_line_and_sends_nothing(
    server: LocalServer, session: Session
) -> None:
    with pytest.raises(ValueError, match="concurrency must be"):
        Sweep(session, plan("local/echo", {}, {"seed": [1]}), concurrency=0)
    with pytest.raises(ValueError, match="needs a list"):
        falnb.sweep("local/echo", {}, seed=3, session=session, quiet=True)  # type: ignore[arg-type]
    assert accepted(server) == 0
