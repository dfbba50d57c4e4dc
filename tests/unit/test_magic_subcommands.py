"""`%fal endpoints`, `%fal config` and FALNB_PROGRESS, through the magic in an IPython shell."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from falnb import _environment
from falnb.local import LocalServer
from falnb.local.registry import Endpoint, Registry
from falnb.magics import FalCellError


def _point_at(monkeypatch: pytest.MonkeyPatch, base: str, key: str) -> None:
    """FALNB_TARGET=fal plus the URLs `falnb serve` prints, as the README says."""
    monkeypatch.setenv("FALNB_TARGET", "fal")
    monkeypatch.setenv("FAL_KEY", key)
    monkeypatch.setenv("FALNB_RUN_URL", base)
    monkeypatch.setenv("FALNB_QUEUE_URL", f"{base}/_queue")
    monkeypatch.setenv("FALNB_REST_URL", f"{base}/_rest")
    monkeypatch.setenv("FALNB_CDN_URL", f"{base}/_cdn")
    monkeypatch.setenv("FALNB_REALTIME_URL", "ws" + base[len("http") :])


def _other_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    """A server with an app of its own, as `falnb serve --app ...` in another process has."""
    mine = Endpoint(
        "me/posterize", handler=lambda arguments, _ctx: {}, description="Posterizes an image."
    )
    return make_server(registry=Registry([mine]))


def test_endpoints_route_needs_the_key_and_lists_what_the_server_serves(
    make_server: Callable[..., LocalServer],
) -> None:
    other = _other_server(make_server)
    url = f"{other.base_url}/_falnb/endpoints"
    assert httpx.get(url).status_code == 401
    answer = httpx.get(url, headers={"Authorization": f"Key {other.key}"})
    assert answer.json() == {
        "endpoints": [
            {
                "endpoint_id": "me/posterize",
                "description": "Posterizes an image.",
                "queue": True,
                "stream": False,
                "realtime": False,
            }
        ]
    }


def test_endpoints_lists_the_apps_of_the_server_falnb_points_at(
    shell: InteractiveShell,
    make_server: Callable[..., LocalServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = _other_server(make_server)
    _point_at(monkeypatch, other.base_url, other.key)
    shell.run_line_magic("fal", "endpoints")
    printed = capsys.readouterr().out
    assert f"Endpoints of the server at {other.base_url}:" in printed
    assert "me/posterize  Posterizes an image." in printed
    assert "local/echo" not in printed  # that server does not serve the built-ins
    assert other.key not in printed


def test_endpoints_elsewhere_fail_in_one_line(
    shell: InteractiveShell,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _point_at(monkeypatch, f"{server.base_url}/_cdn", server.key)  # answers, but not falnb's list
    with pytest.raises(FalCellError, match="is not a falnb local server"):
        shell.run_line_magic("fal", "endpoints")
    _point_at(monkeypatch, server.base_url, server.key + "-wrong")
    with pytest.raises(FalCellError, match="rejected the key"):
        shell.run_line_magic("fal", "endpoints")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    _point_at(monkeypatch, f"http://127.0.0.1:{closed}", server.key)
    with pytest.raises(FalCellError, match="is unreachable") as info:
        shell.run_line_magic("fal", "endpoints")
    assert info.value.__context__ is None  # no httpx error (holding the key) rides along


def test_endpoints_on_fal_cloud_and_on_the_embedded_server(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FALNB_RUN_URL", "FALNB_QUEUE_URL", "FALNB_REST_URL", "FALNB_CDN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FALNB_REALTIME_URL", raising=False)
    monkeypatch.setenv("FAL_KEY", "a-cloud-key-that-is-never-used")
    monkeypatch.delenv("FALNB_TARGET", raising=False)
    shell.run_line_magic("fal", "endpoints")
    assert "https://fal.ai/models" in capsys.readouterr().out  # nothing is requested

    monkeypatch.setenv("FALNB_TARGET", "local")
    shell.run_line_magic("fal", "endpoints")
    printed = capsys.readouterr().out
    assert "Endpoints of the embedded local server" in printed
    assert "local/echo" in printed


def test_an_unknown_progress_mode_is_said_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_environment, "_warned", set())
    monkeypatch.setenv("FALNB_PROGRESS", "bogus")
    assert _environment.progress_mode() in ("widget", "text", "none")
    assert _environment.progress_mode() in ("widget", "text", "none")
    said = capsys.readouterr().err
    assert said == ("falnb: FALNB_PROGRESS='bogus' is not widget, text or none; ignoring it\n")
    monkeypatch.setenv("FALNB_PROGRESS", "text")
    assert _environment.progress_mode() == "text"
    assert capsys.readouterr().err == ""
