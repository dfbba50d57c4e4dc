"""One credentials parser for every route: the same header means the same on run, queue,
REST and CDN (it used to be 200 on run and 401 on upload)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import msgpack
import pytest
from websockets.sync.client import connect

from falnb.local import LocalServer
from falnb.local.auth import Credentials, parse_authorization

#: role -> a request that needs credentials there (method, path, body)
ROUTES: dict[str, tuple[str, str, bytes]] = {
    "run": ("POST", "/local/echo", b"{}"),
    "queue": ("POST", "/_queue/local/echo", b"{}"),
    "rest": ("POST", "/_rest/storage/auth/token", b"{}"),
    "cdn": ("POST", "/_cdn/files/upload", b"bytes"),
}
#: (HTTP clients refuse to send values with leading or trailing whitespace.)
KEY_FORMS = ["Key {key}", "key {key}", "KEY {key}", "Key   {key}", "Key\t{key}", "Key \t {key}"]


def _call(server: LocalServer, role: str, authorization: str | None) -> int:
    method, path, body = ROUTES[role]
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    return httpx.request(
        method, server.base_url + path, content=body, headers=headers, timeout=10
    ).status_code


@pytest.mark.parametrize("role", ROUTES)
@pytest.mark.parametrize("form", KEY_FORMS)
def test_every_key_form_opens_every_route(server: LocalServer, role: str, form: str) -> None:
    assert _call(server, role, form.format(key=server.key)) == 200


@pytest.mark.parametrize("role", ROUTES)
@pytest.mark.parametrize(
    "form", ["Key", "Key wrong", "Bearer", "Basic {key}", "{key}", "Key {key}x", "Key:{key}"]
)
def test_bad_forms_are_refused_everywhere(server: LocalServer, role: str, form: str) -> None:
    assert _call(server, role, form.format(key=server.key)) == 401


@pytest.fixture
def tokens(server: LocalServer) -> Callable[[str], str]:
    def mint(kind: str) -> str:
        allowed = ("echo",) if kind == "app" else ()
        return server.state.tokens.mint(kind, allowed_apps=allowed).value

    return mint


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_tokens_open_what_they_are_for(
    server: LocalServer, tokens: Callable[[str], str], scheme: str
) -> None:
    app, cdn = tokens("app"), tokens("cdn")
    opened = {
        role: (_call(server, role, f"{scheme}  {app}"), _call(server, role, f"{scheme} {cdn}"))
        for role in ROUTES
    }
    # App tokens run apps; CDN tokens upload; neither mints tokens (REST needs the key).
    assert opened == {
        "run": (200, 401),
        "queue": (200, 401),
        "rest": (401, 401),
        "cdn": (401, 200),
    }


def test_an_app_token_is_scoped_to_its_alias(
    server: LocalServer, tokens: Callable[[str], str]
) -> None:
    token = tokens("app")
    other = httpx.post(
        f"{server.base_url}/local/slow", json={}, headers={"authorization": f"Bearer {token}"}
    )
    assert other.status_code == 401


def test_the_key_itself_is_not_a_bearer_token(server: LocalServer) -> None:
    for role in ROUTES:
        assert _call(server, role, f"Bearer {server.key}") == 401


def test_parse_authorization() -> None:
    assert parse_authorization("Key  a:b ") == Credentials("key", "a:b")
    assert parse_authorization("Bearer\ttok") == Credentials("bearer", "tok")
    assert parse_authorization("Key a b") == Credentials("key", "a b")
    for blank in (None, "", "Key", "Key   ", "   "):
        assert parse_authorization(blank) is None


REALTIME = "local/realtime-echo"


@pytest.mark.parametrize("form", ["key {key}", "Key   {key}", "Bearer {token}"])
def test_realtime_reads_the_same_forms(server: LocalServer, form: str) -> None:
    token = server.state.tokens.mint("app", allowed_apps=("realtime-echo",)).value
    header = form.format(key=server.key, token=token)
    url = f"{server.target.realtime_url}/{REALTIME}/realtime"
    with connect(url, additional_headers={"Authorization": header}) as ws:
        ws.send(msgpack.packb({"n": 1}, use_bin_type=True))
        reply = ws.recv(timeout=10)
        assert isinstance(reply, bytes)
        assert msgpack.unpackb(reply, raw=False)["n"] == 1


def test_realtime_refuses_a_cdn_token(server: LocalServer, tokens: Callable[[str], str]) -> None:
    url = f"{server.target.realtime_url}/{REALTIME}/realtime"
    with connect(url, additional_headers={"Authorization": f"Bearer {tokens('cdn')}"}) as ws:
        refusal = json.loads(ws.recv(timeout=10))
        assert refusal == {"status": "error", "error": "Unauthorized"}
