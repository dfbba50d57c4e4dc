"""The per-endpoint OpenAPI documents the local server publishes, in fal's URL layout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest

import falnb.local

DOCUMENT = "/_rest/api/openapi/queue/openapi.json"


def _input(document: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    """The input schema, found as fal-endpoint-types finds it: through the POST's $ref."""
    post = document["paths"][f"/{endpoint_id}"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return dict(document["components"]["schemas"][ref.rsplit("/", 1)[-1]])


def test_builtin_document_declares_the_limits_the_app_enforces(http: httpx.Client) -> None:
    document = http.get(DOCUMENT, params={"endpoint_id": "local/text-to-image"}).json()
    assert document["openapi"] == "3.0.4"
    schema = _input(document, "local/text-to-image")
    assert schema["x-fal-order-properties"][:3] == ["prompt", "image_size", "num_images"]
    assert schema["required"] == ["prompt"]
    num_images = schema["properties"]["num_images"]
    assert (num_images["minimum"], num_images["maximum"], num_images["default"]) == (1, 4, 1)
    assert schema["properties"]["output_format"]["enum"] == ["jpeg", "png"]
    presets = schema["properties"]["image_size"]["anyOf"][0]["enum"]
    assert "landscape_4_3" in presets
    output = document["components"]["schemas"]["TextToImageOutput"]
    assert "images" in output["required"]

    # The same declaration is what the app checks: one past the published maximum is a 422.
    answer = http.post("/local/text-to-image", json={"prompt": "x", "num_images": 5})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "num_images"]
    assert "between 1 and 4" in answer.json()["detail"][0]["msg"]


def test_platform_models_route_embeds_the_document(http: httpx.Client) -> None:
    answer = http.get(
        "/_rest/v1/models",
        params=[("endpoint_id", "local/llm"), ("expand", "openapi-3.0")],
    ).json()
    assert answer["has_more"] is False
    (model,) = answer["models"]
    assert model["endpoint_id"] == "local/llm"
    assert _input(model["openapi"], "local/llm")["properties"]["max_tokens"]["maximum"] == 2048
    listing = http.get("/_rest/v1/models").json()["models"]
    assert "openapi" not in listing[0]
    assert {"local/echo", "local/text-to-image"} <= {m["endpoint_id"] for m in listing}


def test_unknown_endpoint_answers_404(http: httpx.Client) -> None:
    assert http.get(DOCUMENT, params={"endpoint_id": "local/nope"}).status_code == 404


class Nested(pydantic.BaseModel):
    width: int = pydantic.Field(default=64, ge=8, le=512)


class Poster(pydantic.BaseModel):
    prompt: str = pydantic.Field(description="What to draw")
    bits: int = pydantic.Field(default=3, ge=1, le=8)
    size: Nested = Nested()


class PosterOut(pydantic.BaseModel):
    bits: int


@pytest.fixture
def poster() -> Iterator[str]:
    @falnb.local.app("me/poster-schema")
    def poster(arguments: Poster) -> PosterOut:
        return PosterOut(bits=arguments.bits)

    yield "me/poster-schema"
    falnb.local.unregister("me/poster-schema")


def test_user_app_document_comes_from_its_pydantic_models(http: httpx.Client, poster: str) -> None:
    document = http.get(DOCUMENT, params={"endpoint_id": poster}).json()
    schema = _input(document, poster)
    assert schema["x-fal-order-properties"] == ["prompt", "bits", "size"]
    assert schema["properties"]["bits"] == {
        "default": 3,
        "maximum": 8,
        "minimum": 1,
        "title": "Bits",
        "type": "integer",
    }
    # Nested models are hoisted beside the input, their refs pointed there.
    assert schema["properties"]["size"]["$ref"] == "#/components/schemas/Nested"
    assert document["components"]["schemas"]["Nested"]["properties"]["width"]["maximum"] == 512
    assert document["components"]["schemas"]["PosterSchemaOutput"]["required"] == ["bits"]


def test_the_catalogue_searches_ids_and_descriptions(http: httpx.Client) -> None:
    def found(q: str) -> list[str]:
        listing = http.get("/_rest/v1/models", params={"q": q}).json()["models"]
        return [m["endpoint_id"] for m in listing]

    assert found("Stream-Text") == ["local/stream-text"]
    assert found("nothing-like-it") == []
    assert "local/echo" in found(
        "zzz unchanged"
    )  # any word: echo "returns its arguments unchanged"
