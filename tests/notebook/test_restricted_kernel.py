"""A ``%%fal`` cell in a real kernel whose account stores outputs as private (``forbid``):
the image still renders, fetched once through a signed URL; the key never reaches the CDN and
the lock keeps the plain URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from falnb.local import LocalServer

CELL = (
    "%%fal local/text-to-image --seed 5\nprompt: a fox\nimage_size: square\nnum_inference_steps: 1"
)


@pytest.fixture
def private_outputs(server: LocalServer) -> Iterator[None]:
    """The session server's account default is ``forbid`` for this test only."""
    settings = f"{server.base_url}/_rest/v1/storage/settings"
    auth = {"Authorization": f"Key {server.key}"}
    put = httpx.put(settings, json={"initial_acl": {"default": "forbid"}}, headers=auth)
    assert put.status_code == 200
    try:
        yield
    finally:
        httpx.put(settings, json={}, headers=auth)


def test_a_private_output_renders_in_a_fal_cell(
    private_outputs: None, run_notebook: Any, server: LocalServer, tmp_path: Path
) -> None:
    notebook, _ = run_notebook(["%load_ext falnb", CELL])
    outputs = notebook.cells[1].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert any(
        "image/png" in o.get("data", {})
        or "image/jpeg" in o.get("data", {})
        or "<img" in o.get("data", {}).get("text/html", "")
        for o in outputs
    )
    gets = [e for e in server.journal.entries(method="GET", role="cdn") if "/files/" in e.path]
    assert [e.status for e in gets] == [403, 200]
    assert not any(e.credentials for e in gets)
    signs = server.journal.entries(path_contains="/storage/files/sign")
    assert [e.status for e in signs] == [200]
    assert gets[0].time <= signs[0].time <= gets[1].time
    lock = (tmp_path / "falnb.lock").read_text()
    assert "/_cdn/files/" in lock
    assert "sig=" not in lock
    assert "expires=" not in lock
    assert server.key not in lock
