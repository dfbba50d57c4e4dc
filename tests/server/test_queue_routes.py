"""The queue over loopback: submit, status (poll and stream), result, cancel, positions."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from falnb.local import Context, Endpoint, LocalServer, Registry


def auth(server: LocalServer) -> dict[str, str]:
    return {"Authorization": f"Key {server.key}"}


def status(http: httpx.Client, submitted: dict[str, Any], logs: str = "1") -> httpx.Response:
    return http.get(submitted["status_url"], params={"logs": logs})


def stream_events(http: httpx.Client, url: str, logs: str = "1") -> list[dict[str, Any]]:
    with http.stream("GET", url + "/stream", params={"logs": logs}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [
            json.loads(line[len("data: ") :])
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]


def submit(http: httpx.Client, endpoint: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"/_queue/{endpoint}", json=arguments)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_submit_body_and_absolute_urls(server: LocalServer, http: httpx.Client) -> None:
    body = submit(http, "local/echo", {"a": 1})
    rid = body["request_id"]
    base = f"{server.base_url}/_queue/local/echo/requests/{rid}"
    assert body == {
        "status": "IN_QUEUE",
        "request_id": rid,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "queue_position": 0,
    }


def test_sub_path_endpoint_urls_have_no_sub_path(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(
        registry=Registry([Endpoint("me/tool/fast", handler=lambda a, c: {"fast": True})])
    )
    with httpx.Client(base_url=server.base_url, headers=auth(server)) as http:
        body = submit(http, "me/tool/fast", {})
        assert body["status_url"].startswith(f"{server.base_url}/_queue/me/tool/requests/")
        assert stream_events(http, body["status_url"])[-1]["status"] == "COMPLETED"
        assert http.get(body["response_url"]).json() == {"fast": True}


def test_happy_path_202_then_200_with_logs_and_metrics(http: httpx.Client, until: Any) -> None:
    body = submit(http, "local/slow", {"duration": 0.6, "steps": 3})
    first = status(http, body)
    assert first.status_code == 202
    assert first.json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
    running = until(lambda: (r := status(http, body)).json()["status"] == "IN_PROGRESS" and r)
    assert running.status_code == 202
    assert isinstance(running.json()["logs"], list)
    done = until(lambda: (r := status(http, body)).status_code == 200 and r)
    final = done.json()
    assert final["status"] == "COMPLETED"
    assert final["response_url"] == body["response_url"]
    assert [log["message"] for log in final["logs"]][-1] == "step 3/3"
    log = final["logs"][-1]
    assert set(log) == {"message", "level", "source", "timestamp", "labels"}
    assert log["source"] == "USER"
    assert log["level"] == "INFO"
    assert log["timestamp"].endswith("Z")
    assert len(log["timestamp"]) == len("2024-05-01T12:00:00.123Z")
    assert final["metrics"]["inference_time"] >= 0.5
    assert "error" not in final
    result = http.get(body["response_url"])
    assert result.status_code == 200
    assert result.json() == {"duration": 0.6, "steps": 3, "seed": None}
    assert result.headers["x-fal-request-id"] == body["request_id"]


@pytest.mark.parametrize("logs", ["0", "false", None])
def test_logs_are_null_when_not_requested(http: httpx.Client, until: Any, logs: str | None) -> None:
    body = submit(http, "local/slow", {"duration": 0.1, "steps": 2})
    params = {"logs": logs} if logs is not None else {}
    done = until(
        lambda: (r := http.get(body["status_url"], params=params)).status_code == 200 and r
    )
    assert "logs" in done.json()
    assert done.json()["logs"] is None


def test_trailing_slashes_are_tolerated(http: httpx.Client, until: Any) -> None:
    body = submit(http, "local/echo", {"x": 2})
    until(lambda: http.get(body["status_url"] + "/").status_code == 200)
    assert http.get(body["response_url"] + "/").json() == {"x": 2}


def test_namespace_prefix_is_ignored_for_lookups(http: httpx.Client, until: Any) -> None:
    body = submit(http, "comfy/local/echo", {"y": 3})
    rid = body["request_id"]
    url = f"/_queue/workflows/local/echo/requests/{rid}"
    until(lambda: http.get(url + "/status").status_code == 200)
    assert http.get(url).json() == {"y": 3}


def test_request_under_another_app_is_not_found(http: httpx.Client) -> None:
    body = submit(http, "local/echo", {})
    response = http.get(f"/_queue/local/slow/requests/{body['request_id']}/status")
    assert response.status_code == 404


def test_queue_positions_are_real_and_fifo(make_server: Callable[..., LocalServer]) -> None:
    gate = threading.Event()
    order: list[int] = []

    def blocked(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        gate.wait(10)
        order.append(arguments["n"])
        return {"n": arguments["n"]}

    server = make_server(concurrency=1, registry=Registry([Endpoint("t/blocked", handler=blocked)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        bodies = [submit(http, "t/blocked", {"n": n}) for n in range(4)]
        # The first starts at once; the others wait behind it in order.
        assert [b["queue_position"] for b in bodies] == [0, 0, 1, 2]
        statuses = [status(http, b).json() for b in bodies[1:]]
        assert [s["queue_position"] for s in statuses] == [0, 1, 2]
        assert all(s["status"] == "IN_QUEUE" for s in statuses)
        gate.set()
        for b in bodies:
            assert stream_events(http, b["status_url"])[-1]["status"] == "COMPLETED"
    assert order == [0, 1, 2, 3]


def test_a_queued_stream_follows_its_position(make_server: Callable[..., LocalServer]) -> None:
    """Positions stay right as jobs start, a job ahead is cancelled and more join behind; the
    stream of the last one sends each new place (re-read, not woken per start) in order."""
    gates = [threading.Event() for _ in range(5)]

    def blocked(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        assert gates[arguments["n"]].wait(10)
        return {}

    server = make_server(concurrency=1, registry=Registry([Endpoint("t/blocked", handler=blocked)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        bodies = [submit(http, "t/blocked", {"n": n}) for n in range(4)]
        assert [b["queue_position"] for b in bodies] == [0, 0, 1, 2]
        assert http.put(bodies[1]["cancel_url"]).status_code == 202  # from the middle
        behind = submit(http, "t/blocked", {"n": 4})
        assert behind["queue_position"] == 2  # after 2 and 3: the gap is closed
        assert [status(http, b).json()["queue_position"] for b in bodies[2:]] == [0, 1]
        running = {1: 0, 0: 2}  # at each place of job 3, the job that runs ahead of it
        positions: list[int] = []
        with http.stream("GET", bodies[3]["status_url"] + "/stream") as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[len("data: ") :])
                if event["status"] != "IN_QUEUE":
                    assert event["status"] == "IN_PROGRESS"
                    break
                positions.append(event["queue_position"])
                gates[running[positions[-1]]].set()  # the queue moves up by one
        assert positions == [1, 0]
        gates[3].set()
        gates[4].set()
        assert stream_events(http, behind["status_url"])[-1]["status"] == "COMPLETED"


def test_concurrency_bounds_running_requests(make_server: Callable[..., LocalServer]) -> None:
    gate = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def counted(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(10)
        with lock:
            running -= 1
        return {}

    server = make_server(concurrency=2, registry=Registry([Endpoint("t/counted", handler=counted)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        bodies = [submit(http, "t/counted", {}) for _ in range(5)]
        assert [b["queue_position"] for b in bodies] == [0, 0, 0, 1, 2]
        gate.set()
        for b in bodies:
            assert stream_events(http, b["status_url"], logs="0")[-1]["status"] == "COMPLETED"
    assert peak == 2


def test_status_poll_logs_are_a_moving_window(make_server: Callable[..., LocalServer]) -> None:
    def chatty(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        for index in range(12):
            ctx.log(f"line {index}")
        return {}

    server = make_server(registry=Registry([Endpoint("t/chatty", handler=chatty)]))
    server.state.jobs.log_window_lines = 5
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        body = submit(http, "t/chatty", {})
        streamed = stream_events(http, body["status_url"])
        polled = status(http, body).json()
    # The poll shows only the newest lines; the stream delivered every line exactly once.
    assert [log["message"] for log in polled["logs"]] == [f"line {i}" for i in range(7, 12)]
    all_streamed = [log["message"] for event in streamed for log in event["logs"] or []]
    assert all_streamed == [f"line {i}" for i in range(12)]


def test_status_stream_sequence_and_close(http: httpx.Client) -> None:
    body = submit(http, "local/slow", {"duration": 0.4, "steps": 4})
    events = stream_events(http, body["status_url"])
    statuses = [e["status"] for e in events]
    assert statuses[-1] == "COMPLETED"
    assert statuses.count("COMPLETED") == 1
    assert set(statuses) <= {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert statuses.index("COMPLETED") == len(statuses) - 1
    messages = [log["message"] for e in events for log in e.get("logs") or []]
    assert messages == [f"step {i}/4" for i in range(1, 5)]  # each line once, in order
    for event in events:
        assert event["response_url"] == body["response_url"]
        if event["status"] != "IN_QUEUE":
            assert "logs" in event


def test_status_stream_of_completed_request_is_one_event(http: httpx.Client, until: Any) -> None:
    body = submit(http, "local/echo", {})
    until(lambda: status(http, body).status_code == 200)
    events = stream_events(http, body["status_url"], logs="0")
    assert len(events) == 1
    assert events[0]["status"] == "COMPLETED"
    assert events[0]["logs"] is None


def test_result_before_completion_is_400(http: httpx.Client) -> None:
    body = submit(http, "local/slow", {"duration": 5, "steps": 5})
    try:
        response = http.get(body["response_url"])
        assert response.status_code == 400
        assert response.json() == {"detail": "Request is still in progress"}
    finally:
        http.put(body["cancel_url"])


@pytest.mark.parametrize(
    ("arguments", "status_code", "error_type"),
    [
        ({"status": 500, "detail": "model exploded"}, 500, None),
        (
            {"status": 503, "detail": "no GPU", "error_type": "runner_scheduling_failure"},
            503,
            "runner_scheduling_failure",
        ),
        ({"status": 422}, 422, None),
    ],
)
def test_failed_request_completes_and_replays_its_answer(
    http: httpx.Client, arguments: dict[str, Any], status_code: int, error_type: str | None
) -> None:
    direct = http.post("/local/fail", json=arguments)
    body = submit(http, "local/fail", arguments)
    final = stream_events(http, body["status_url"])[-1]
    assert final["status"] == "COMPLETED"
    assert final["error"]
    assert final["error_type"] == error_type
    result = http.get(body["response_url"])
    assert result.status_code == status_code == direct.status_code
    assert result.json() == direct.json()
    if error_type:
        assert result.headers["x-fal-error-type"] == error_type


def test_cancel_a_queued_request(make_server: Callable[..., LocalServer]) -> None:
    gate = threading.Event()
    ran: list[int] = []

    def blocked(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        ran.append(arguments["n"])
        gate.wait(10)
        return {}

    server = make_server(concurrency=1, registry=Registry([Endpoint("t/blocked", handler=blocked)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        _first, second, third = (submit(http, "t/blocked", {"n": n}) for n in range(3))
        cancelled = http.put(second["cancel_url"])
        assert cancelled.status_code == 202
        assert cancelled.json() == {"status": "CANCELLATION_REQUESTED"}
        assert status(http, third).json()["queue_position"] == 0  # moved up
        final = status(http, second).json()
        assert final["status"] == "COMPLETED"
        assert final["error_type"] == "client_cancelled"
        gate.set()
        assert stream_events(http, third["status_url"])[-1]["status"] == "COMPLETED"
        result = http.get(second["response_url"])
        assert result.status_code == 499
        assert result.json() == {"detail": "Request cancelled", "error_type": "client_cancelled"}
    assert ran == [0, 2]


def test_cancel_a_running_sync_request(http: httpx.Client, until: Any) -> None:
    body = submit(http, "local/slow", {"duration": 30, "steps": 300})
    until(lambda: status(http, body).json()["status"] == "IN_PROGRESS")
    response = http.put(body["cancel_url"])
    assert response.status_code == 202
    final = status(http, body)  # completes at once, no waiting for the handler
    assert final.status_code == 200
    assert final.json()["error_type"] == "client_cancelled"
    assert final.json()["error"] == "Request cancelled"
    assert http.get(body["response_url"]).status_code == 499
    again = http.put(body["cancel_url"])
    assert again.status_code == 400
    assert again.json() == {"status": "ALREADY_COMPLETED"}


def test_cancel_a_running_async_request_cancels_its_task(
    make_server: Callable[..., LocalServer], until: Any
) -> None:
    outcome: list[str] = []

    async def forever(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return {}

    server = make_server(registry=Registry([Endpoint("t/forever", handler=forever)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        body = submit(http, "t/forever", {})
        until(lambda: status(http, body).json()["status"] == "IN_PROGRESS")
        assert http.put(body["cancel_url"]).status_code == 202
        until(lambda: outcome == ["cancelled"], what="the handler task to be cancelled")
        assert status(http, body).json()["error_type"] == "client_cancelled"


def test_cancel_done_and_unknown(http: httpx.Client, until: Any) -> None:
    body = submit(http, "local/echo", {})
    until(lambda: status(http, body).status_code == 200)
    done = http.put(body["cancel_url"])
    assert done.status_code == 400
    assert done.json() == {"status": "ALREADY_COMPLETED"}
    unknown = http.put("/_queue/local/echo/requests/no-such-request/cancel")
    assert unknown.status_code == 404
    assert unknown.json() == {"status": "NOT_FOUND"}
    assert http.get("/_queue/local/echo/requests/no-such-request/status").status_code == 404


def test_start_timeout_expires_in_the_queue(make_server: Callable[..., LocalServer]) -> None:
    gate = threading.Event()

    def blocked(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        gate.wait(10)
        return {}

    server = make_server(concurrency=1, registry=Registry([Endpoint("t/blocked", handler=blocked)]))
    with httpx.Client(base_url=server.base_url, headers=auth(server), timeout=10) as http:
        first = submit(http, "t/blocked", {})
        late = http.post(
            "/_queue/t/blocked", json={}, headers={"x-fal-request-timeout": "1.1"}
        ).json()
        threading.Timer(1.4, gate.set).start()
        final = stream_events(http, late["status_url"])[-1]
        assert final["error_type"] == "request_timeout"
        result = http.get(late["response_url"])
        assert result.status_code == 504
        assert result.headers["x-fal-request-timeout-type"] == "user"
        assert stream_events(http, first["status_url"])[-1].get("error") is None


def test_queue_headers_are_recorded(server: LocalServer, http: httpx.Client) -> None:
    response = http.post(
        "/_queue/local/echo",
        json={},
        headers={
            "x-fal-queue-priority": "low",
            "x-fal-runner-hint": "gpu-7",
            "x-fal-no-retry": "1",
            "x-fal-request-timeout": "30",
        },
    )
    job = server.state.jobs.get(response.json()["request_id"])
    assert job is not None
    assert job.options == {
        "x-fal-queue-priority": "low",
        "x-fal-runner-hint": "gpu-7",
        "x-fal-no-retry": "1",
        "x-fal-request-timeout": "30",
    }


def test_webhook_submit_has_gateway_request_id(http: httpx.Client) -> None:
    response = http.post(
        "/_queue/local/echo", params={"fal_webhook": "http://127.0.0.1:9/hook"}, json={}
    )
    body = response.json()
    assert body["gateway_request_id"] == body["request_id"]


def test_unknown_endpoint_submit_is_404(http: httpx.Client, server: LocalServer) -> None:
    response = http.post("/_queue/fal-ai/flux/dev", json={})
    assert response.status_code == 404
    assert "Local endpoints:" in response.json()["detail"]
    assert server.journal.accepted_submissions() == []
