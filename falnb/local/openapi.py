"""Each endpoint's queue OpenAPI document, as fal publishes one per endpoint.

Two routes under the REST root, in fal's layout (fal-platform-apis.md section 1):

* ``GET /v1/models?endpoint_id=ID[&expand=openapi-3.0]`` (``api.fal.ai/v1/models``): the
  catalogue; ``expand=openapi-3.0`` embeds each endpoint's document as ``openapi``;
  without ``endpoint_id`` it lists every endpoint served, or with ``q`` those whose id or
  description holds one of its words (fal: free text over name, description, category);
* ``GET /api/openapi/queue/openapi.json?endpoint_id=ID`` (fal.ai's public copy): one
  document, 404 for an id the server does not serve.

A document is OpenAPI 3.0.4 with ``components.schemas.{<Name>Input, <Name>Output}`` (nested
pydantic models hoisted beside them) and the queue paths; schemas keep their
``x-fal-order-properties``. An endpoint that declares no input schema gets an open one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from falnb.local.registry import Endpoint
from falnb.local.state import ServerState

__all__ = ["EXPAND_OPENAPI", "openapi_document", "openapi_routes", "schema_name"]

EXPAND_OPENAPI = "openapi-3.0"
_OPEN_INPUT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def schema_name(endpoint_id: str) -> str:
    """``fal-ai/bytedance/seedream/v4/text-to-image`` -> ``BytedanceSeedreamV4TextToImage``
    (fal names schemas after the id without its owner)."""
    words = re.split(r"[^A-Za-z0-9]+", endpoint_id.split("/", 1)[-1])
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def _hoisted(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved into ``components`` and its refs pointed there."""
    schema = dict(schema)
    definitions = schema.pop("$defs", {})
    text = json.dumps(schema)
    for name, definition in definitions.items():
        components[name] = json.loads(
            json.dumps(definition).replace("#/$defs/", "#/components/schemas/")
        )
    return dict(json.loads(text.replace("#/$defs/", "#/components/schemas/")))


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(name)}}}


def openapi_document(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint's queue OpenAPI document."""
    endpoint_id = endpoint.endpoint_id
    name = schema_name(endpoint_id)
    components: dict[str, Any] = {}
    components[f"{name}Input"] = _hoisted(endpoint.input_schema or _OPEN_INPUT, components)
    components[f"{name}Output"] = _hoisted(endpoint.output_schema or _OPEN_INPUT, components)
    path = f"/{endpoint_id}"
    return {
        "openapi": "3.0.4",
        "info": {
            "title": f"Queue OpenAPI for {endpoint_id}",
            "version": "1.0.0",
            "description": endpoint.description,
            "x-fal-metadata": {"endpointId": endpoint_id},
        },
        "components": {"schemas": components},
        "paths": {
            path: {
                "post": {
                    "requestBody": {"required": True, **_json_body(f"{name}Input")},
                    "responses": {"200": {"description": "The request was queued"}},
                }
            },
            f"{path}/requests/{{request_id}}": {
                "get": {
                    "responses": {"200": {"description": "Result", **_json_body(f"{name}Output")}}
                }
            },
        },
        "x-fal-order-paths": [path, f"{path}/requests/{{request_id}}"],
    }


def _model(endpoint: Endpoint, *, expand: bool) -> dict[str, Any]:
    model: dict[str, Any] = {
        "endpoint_id": endpoint.endpoint_id,
        "metadata": {
            "display_name": endpoint.endpoint_id,
            "description": endpoint.description,
            "status": "active",
            "kind": "inference",
        },
    }
    if expand:
        model["openapi"] = openapi_document(endpoint)
    return model


def openapi_routes(state: ServerState) -> list[BaseRoute]:
    """Routes relative to the REST root (the server mounts them at ``/_rest``)."""

    async def models(request: Request) -> Response:
        ids = [
            part.strip()
            for value in request.query_params.getlist("endpoint_id")
            for part in value.split(",")
            if part.strip()
        ]
        expand = EXPAND_OPENAPI in request.query_params.getlist("expand")
        words = request.query_params.get("q", "").lower().split()
        found = [state.registry.get(i) for i in dict.fromkeys(ids)] if ids else list(state.registry)
        if words and not ids:
            found = [
                e
                for e in found
                if e is not None
                and any(w in f"{e.endpoint_id} {e.description}".lower() for w in words)
            ]
        listed = [_model(e, expand=expand) for e in found if e is not None]
        return JSONResponse({"models": listed, "next_cursor": None, "has_more": False})

    async def document(request: Request) -> Response:
        endpoint_id = request.query_params.get("endpoint_id", "")
        endpoint = state.registry.get(endpoint_id) if endpoint_id else None
        if endpoint is None:
            return JSONResponse({"detail": f"no endpoint {endpoint_id!r}"}, status_code=404)
        return JSONResponse(openapi_document(endpoint))

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/api/openapi/queue/openapi.json", document, methods=["GET"]),
    ]
