"""Tab completion and Shift-Tab inspection of %fal / %%fal, through a real kernel's
complete_request and inspect_request (what JupyterLab sends), from the endpoints' schemas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from nbkit import kernel_env, running_kernel

from falnb.local import LocalServer


@pytest.fixture(scope="module")
def kernel(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One kernel for the module (completion is read-only), targeting the test server."""
    lock = tmp_path_factory.mktemp("completion") / "falnb.lock"
    env = {**os.environ, **kernel_env(server), "FALNB_LOCK": str(lock)}
    with running_kernel(env=env) as client:
        reply = client.execute_interactive("import falnb", timeout=60)
        assert reply["content"]["status"] == "ok", reply
        yield client


def complete(kernel: Any, code: str) -> list[str]:
    reply = kernel.complete(code, len(code), reply=True, timeout=30)["content"]
    assert reply["status"] == "ok", reply
    start = reply["cursor_start"]
    # What the editor would show: the line with each match put in place of the token.
    return [code[:start] + match for match in reply["matches"]]


def inspect(kernel: Any, code: str, cursor: int) -> str | None:
    reply = kernel.inspect(code, cursor, reply=True, timeout=30)["content"]
    return reply["data"].get("text/plain") if reply["found"] else None


def test_endpoint_ids_complete_after_the_magic(kernel: Any) -> None:
    assert "%fal local/text-to-image" in complete(kernel, "%fal local/text-to")
    assert "%%fal local/text-to-video" in complete(kernel, "%%fal local/text-to-v")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(
            "%fal local/text-to-image prompt=fox num_",
            [
                "%fal local/text-to-image prompt=fox num_images=",
                "%fal local/text-to-image prompt=fox num_inference_steps=",
            ],
            id="argument-names-on-the-line",
        ),
        pytest.param(
            "%%fal local/text-to-image\nprompt: fox\nout",
            ["%%fal local/text-to-image\nprompt: fox\noutput_format: "],
            id="argument-names-in-the-body",
        ),
        pytest.param(
            "%fal local/text-to-image image_size=landscape",
            [
                "%fal local/text-to-image image_size=landscape_4_3",
                "%fal local/text-to-image image_size=landscape_16_9",
            ],
            id="choices-on-the-line",
        ),
        pytest.param(
            "%%fal local/text-to-video\naspect_ratio: ",
            [
                f"%%fal local/text-to-video\naspect_ratio: {ratio}"
                for ratio in ("16:9", "9:16", "1:1")
            ],
            id="choices-in-the-body",
        ),
    ],
)
def test_argument_names_and_choices_complete(kernel: Any, code: str, expected: list[str]) -> None:
    assert complete(kernel, code) == expected


def test_shift_tab_shows_a_fields_description_type_default_and_limits(kernel: Any) -> None:
    code = "%%fal local/text-to-image\nprompt: fox\nnum_images: 2"
    text = inspect(kernel, code, code.index("num_images") + 3)
    assert text == (
        "local/text-to-image · num_images\nHow many images to make\n"
        "allowed: an integer from 1 to 4\ndefault: 1"
    )
    line = "%fal local/llm prompt=hi max_tokens=9"
    assert "allowed: an integer from 1 to 2048" in (inspect(kernel, line, len(line) - 4) or "")
    # Outside falnb's cells, inspection is IPython's own.
    assert "builtin_function_or_method" in (inspect(kernel, "len", 2) or "")
