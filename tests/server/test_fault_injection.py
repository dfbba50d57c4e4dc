"""Fault injection: Python rules and the per-request x-falnb-fault header, over loopback."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from falnb.local import LocalServer
from falnb.local.faults import FaultInjectionDisabledError, parse_fault


def test_429_has_retry_after_header_and_body(http: httpx.Client) -> None:
    response = http.post(
        "/_queue/local/echo", json={}, headers={"x-falnb-fault": "status=429;retry_after=2"}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["retry_after"] == 2
    assert "detail" in response.json()
    assert "x-fal-request-id" in response.headers


def test_ingress_5xx_is_nginx_html_without_request_id(http: httpx.Client) -> None:
    response = http.post("/local/echo", json={}, headers={"x-falnb-fault": "status=503;ingress"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "nginx" in response.text
    assert "x-fal-request-id" not in response.headers


def test_app_5xx_is_json_with_request_id(http: httpx.Client) -> None:
    response = http.post(
        "/local/echo",
        json={},
        headers={"x-falnb-fault": "status=503;error_type=runner_disconnected"},
    )
    assert response.status_code == 503
    assert response.json() == {
        "detail": "Service Unavailable",
        "error_type": "runner_disconnected",
    }
    assert response.headers["x-fal-error-type"] == "runner_disconnected"
    assert "x-fal-request-id" in response.headers


def test_user_timeout_504(http: httpx.Client) -> None:
    response = http.post(
        "/local/echo", json={}, headers={"x-falnb-fault": "status=504;user_timeout"}
    )
    assert response.status_code == 504
    assert response.headers["x-fal-request-timeout-type"] == "user"


def test_delay_then_normal_answer(http: httpx.Client, server: LocalServer) -> None:
    started = time.monotonic()
    response = http.post("/local/echo", json={"a": 1}, headers={"x-falnb-fault": "delay=0.4"})
    assert time.monotonic() - started >= 0.4
    assert response.json() == {"a": 1}
    assert server.journal.entries(path_contains="/local/echo")[0].fault == "delay=0.4"


def test_reset_aborts_without_response(http: httpx.Client, server: LocalServer) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/local/echo", json={}, headers={"x-falnb-fault": "reset"})
    # The server is fine afterwards.
    assert http.post("/local/echo", json={"b": 2}).json() == {"b": 2}
    assert server.faults.counts() == {"header": 1}


def test_drop_closes_status_stream_before_completed(http: httpx.Client) -> None:
    submitted = http.post("/_queue/local/slow", json={"duration": 0.5, "steps": 2}).json()
    try:
        with http.stream(
            "GET",
            submitted["status_url"] + "/stream",
            params={"logs": "1"},
            headers={"x-falnb-fault": "drop"},
        ) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert len(lines) == 1
        assert json.loads(lines[0][len("data: ") :])["status"] != "COMPLETED"
    finally:
        http.put(submitted["cancel_url"])


def test_drop_cuts_an_output_stream_after_its_first_event(http: httpx.Client) -> None:
    response = http.post(
        "/local/stream-text/stream",
        json={"prompt": "a b c d"},
        headers={"x-falnb-fault": "drop"},
    )
    events = [b for b in response.text.split("\n\n") if b]
    assert events == ['data: {"text":"a"}']


def test_rule_fires_times_then_stops(http: httpx.Client, server: LocalServer) -> None:
    rule = server.faults.add("status=503;ingress", role="queue", method="POST", times=2)
    codes = [http.post("/_queue/local/echo", json={}).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert rule.fired == 2
    assert server.faults.counts() == {"status=503;ingress": 2}
    # Faulted submits never reached the queue: only the last one is an accepted submission.
    assert len(server.journal.accepted_submissions()) == 1
    assert len(server.journal.accepted_submissions("local/echo")) == 1
    faulted = server.journal.entries(role="queue", status=503)
    assert [e.fault for e in faulted] == ["status=503;ingress"] * 2


def test_rule_matches_role_method_and_path(http: httpx.Client, server: LocalServer) -> None:
    server.faults.add("status=500", path_contains="/status", method="GET")
    submitted = http.post("/_queue/local/echo", json={}).json()
    assert http.get(submitted["status_url"]).status_code == 500
    assert http.post("/local/echo", json={}).status_code == 200


def test_rate_is_reproducible(server: LocalServer, http: httpx.Client) -> None:
    def pattern() -> list[int]:
        server.faults.clear()
        server.faults.add("status=500", role="run", rate=0.5)
        return [http.post("/local/echo", json={}).status_code for _ in range(12)]

    first = pattern()
    assert first == pattern()
    assert set(first) == {200, 500}


def test_clear_removes_rules(http: httpx.Client, server: LocalServer) -> None:
    server.faults.add("status=500")
    server.faults.clear()
    assert http.post("/local/echo", json={}).status_code == 200
    assert server.faults.fired == 0


def test_bad_fault_header_is_400(http: httpx.Client) -> None:
    response = http.post("/local/echo", json={}, headers={"x-falnb-fault": "explode"})
    assert response.status_code == 400
    assert "x-falnb-fault" in response.json()["detail"]


def test_parse_fault_spec() -> None:
    rule = parse_fault("delay=0.5;status=429;retry_after=3;times=2")
    assert (rule.delay, rule.status, rule.retry_after, rule.times) == (0.5, 429, 3.0, 2)
    assert rule.spec == "delay=0.5;status=429;retry_after=3"
    with pytest.raises(ValueError, match="needs"):
        parse_fault("times=3")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        parse_fault("status=200")


# -- who may inject: only authenticated callers, only on servers started for tests ------


@pytest.mark.parametrize("spec", ["status=503", "reset", "delay=30", "status=429;retry_after=9"])
def test_unauthenticated_fault_header_has_no_effect(server: LocalServer, spec: str) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}/_queue/local/echo",
        json={},
        headers={"x-falnb-fault": spec, "Authorization": "Key wrong"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    assert time.monotonic() - started < 5  # not held for the delay
    assert server.faults.fired == 0
    assert [e.fault for e in server.journal.entries(role="queue")] == [None]


def test_rules_skip_unauthenticated_requests(server: LocalServer) -> None:
    rule = server.faults.add("reset", role="run")
    response = httpx.post(f"{server.base_url}/local/echo", json={}, timeout=10)
    assert response.status_code == 401
    assert rule.fired == 0


def test_public_paths_ignore_a_fault_header_without_credentials(
    server: LocalServer, http: httpx.Client
) -> None:
    url = http.post("/_cdn/files/upload", content=b"hi", headers={"content-type": "text/plain"})
    file_url = url.json()["access_url"]
    for spec in ("status=500", "reset"):
        response = httpx.get(file_url, headers={"x-falnb-fault": spec}, timeout=10)
        assert (response.status_code, response.content) == (200, b"hi")
    health = httpx.get(f"{server.base_url}/_falnb/health", headers={"x-falnb-fault": "status=503"})
    assert health.status_code == 200
    assert server.faults.fired == 0
    # With the key the same header does apply there.
    assert http.get(file_url, headers={"x-falnb-fault": "status=500"}).status_code == 500


def test_a_server_not_started_for_tests_ignores_faults() -> None:
    with LocalServer() as plain:  # the default, as the embedded server and `falnb serve` run
        auth = {"Authorization": f"Key {plain.key}"}
        for spec in ("status=503", "reset", "explode"):
            response = httpx.post(
                f"{plain.base_url}/local/echo",
                json={"a": 1},
                headers={**auth, "x-falnb-fault": spec},
                timeout=10,
            )
            assert (response.status_code, response.json()) == (200, {"a": 1})
        with pytest.raises(FaultInjectionDisabledError, match=r"faults=True.*--faults"):
            plain.faults.add("status=500")
        assert plain.faults.fired == 0
        assert all(e.fault is None for e in plain.journal.entries())
