"""Built-in apps answer bad input as pydantic apps do: one 422 naming every bad field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from falnb import SyncClient, ValidationError
from falnb.local import LocalServer


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


def bad_fields(error: ValidationError) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(e["loc"]), e["type"]) for e in error.field_errors]


CASES: list[tuple[str, dict[str, Any], list[tuple[tuple[str, ...], str]]]] = [
    (
        "local/text-to-image",
        {
            "prompt": 5,
            "num_images": 9,
            "image_size": {"width": 0, "height": 99_999},
            "output_format": "gif",
            "sync_mode": "maybe",
        },
        [
            (("body", "prompt"), "string_type"),
            (("body", "image_size", "width"), "range_error"),
            (("body", "image_size", "height"), "range_error"),
            (("body", "num_images"), "range_error"),
            (("body", "output_format"), "literal_error"),
            (("body", "sync_mode"), "bool_type"),
        ],
    ),
    (
        "local/image-to-image",
        {"prompt": "", "strength": 2, "image_size": "huge"},
        [
            (("body", "image_url"), "missing"),
            (("body", "prompt"), "string_too_short"),
            (("body", "strength"), "range_error"),
            (("body", "image_size"), "enum"),
        ],
    ),
    (
        "local/text-to-video",
        {"duration": 99, "fps": "fast", "aspect_ratio": "4:3"},
        [
            (("body", "prompt"), "missing"),
            (("body", "duration"), "range_error"),
            (("body", "fps"), "int_type"),
            (("body", "aspect_ratio"), "literal_error"),
        ],
    ),
    (
        "local/text-to-audio",
        {"prompt": "a tune", "duration": 0, "seed": -1},
        [(("body", "seed"), "range_error"), (("body", "duration"), "range_error")],
    ),
    (
        "local/llm",
        {"max_tokens": 0, "token_delay": "slow", "system_prompt": 3},
        [
            (("body", "prompt"), "missing"),
            (("body", "system_prompt"), "string_type"),
            (("body", "max_tokens"), "range_error"),
            (("body", "token_delay"), "float_parsing"),
        ],
    ),
    (
        "local/slow",
        {"duration": -1, "steps": 0},
        [(("body", "duration"), "value_error"), (("body", "steps"), "value_error")],
    ),
    (
        "local/stream-text",
        {"prompt": ["a"], "delay": "x"},
        [(("body", "prompt"), "string_type"), (("body", "delay"), "value_error")],
    ),
]


@pytest.mark.parametrize(("endpoint", "arguments", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_bad_field_is_named_at_once(
    client: SyncClient,
    server: LocalServer,
    endpoint: str,
    arguments: dict[str, Any],
    expected: list[tuple[tuple[str, ...], str]],
) -> None:
    with pytest.raises(ValidationError) as direct:
        client.run(endpoint, arguments)
    assert sorted(bad_fields(direct.value)) == sorted(expected)
    for error in direct.value.field_errors:
        assert set(error) == {"loc", "msg", "type"}  # fal's shape
        name = ".".join(error["loc"][1:])
        assert f"{name}: {error['msg']}" in str(direct.value)  # the one line names each field

    with pytest.raises(ValidationError) as queued:
        client.subscribe(endpoint, arguments)
    assert sorted(bad_fields(queued.value)) == sorted(expected)
