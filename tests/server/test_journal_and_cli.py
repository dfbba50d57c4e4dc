"""The journal endpoint and the ``falnb`` command line."""

from __future__ import annotations

import subprocess
import sys

import httpx

from falnb.local import LocalServer


def test_journal_endpoint_lists_requests(http: httpx.Client, server: LocalServer) -> None:
    http.post("/local/echo", json={"n": 1})
    entries = http.get("/_falnb/journal").json()
    (entry,) = [e for e in entries if e["path"] == "/local/echo"]
    assert entry["method"] == "POST"
    assert entry["role"] == "run"
    assert entry["status"] == 200
    assert entry["body"] == {"n": 1}
    assert http.delete("/_falnb/journal").status_code == 204
    # Only the DELETE itself (journaled as it answers) is left.
    assert [(e.method, e.path) for e in server.journal.entries()] == [("DELETE", "/_falnb/journal")]


def test_accepted_submissions_count(http: httpx.Client, server: LocalServer) -> None:
    for n in range(3):
        http.post("/_queue/local/echo", json={"n": n})
    http.post("/_queue/local/echo", json={}, headers={"x-falnb-fault": "status=429"})
    http.post("/_queue/nobody/nothing", json={})
    accepted = server.journal.accepted_submissions()
    assert [e.body for e in accepted] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(e.request_id for e in accepted)


def test_cli_serve_list() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "serve", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    ids = [line.split()[0] for line in lines]
    assert {"local/echo", "local/slow", "local/fail", "local/stream-text"} <= set(ids)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # each has a description


def test_cli_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.startswith("falnb ")
