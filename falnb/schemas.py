"""Endpoints' input schemas: fetched once per session, and checked before anything is sent.

fal publishes every endpoint's queue OpenAPI document (``GET /v1/models?endpoint_id=ID&
expand=openapi-3.0`` on the Platform API; the local server serves the same under its REST
root, fal-platform-apis.md 1.2-1.3). :class:`Schemas` asks once per endpoint and target;
:func:`problems` checks arguments against the input schema and names every mistake at once
(unknown fields, wrong types, values out of range or not among the choices, missing required
fields), each with what is allowed, so a mistake is never sent to a paid endpoint.

A schema that cannot be fetched (offline, an old server, a network error) checks nothing: the
request goes as before, and the endpoint answers for itself.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from falnb import _runtime
from falnb.client._transport import NO_RETRY
from falnb.client.errors import FalError
from falnb.pricing import platform_url

__all__ = [
    "EndpointSchema",
    "InvalidArgumentsError",
    "Schemas",
    "UnknownEndpointError",
    "did_you_mean",
    "problems",
]

_ASK_TIMEOUT = 10.0
_NUMERIC = re.compile(r"^\s*[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$")
#: Python values the client turns into strings before sending (uploads become URLs).
_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


class InvalidArgumentsError(FalError, ValueError):
    """Arguments that do not fit the endpoint's input schema; nothing was sent."""

    def __init__(self, endpoint: str, problems: list[str]) -> None:
        self.endpoint = endpoint
        self.problems = problems
        super().__init__(f"{endpoint}: " + "; ".join(problems) + " (nothing was sent)")


class UnknownEndpointError(FalError, ValueError):
    """The target serves no endpoint of that id; nothing was sent."""

    def __init__(self, endpoint: str, suggestions: list[str]) -> None:
        self.endpoint = endpoint
        self.suggestions = suggestions
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"no endpoint {endpoint!r} on this target{hint} (nothing was sent)")


def did_you_mean(word: str, choices: list[str] | frozenset[str], n: int = 2) -> list[str]:
    return difflib.get_close_matches(word, sorted(choices), n=n, cutoff=0.6)


@dataclass(frozen=True)
class EndpointSchema:
    """An endpoint's OpenAPI document, with its input schema found and its refs resolvable."""

    endpoint_id: str
    document: dict[str, Any] = field(repr=False)

    @property
    def hash(self) -> str:
        """``sha256:<hex>`` of the document's canonical JSON: what the lock pins."""
        text = json.dumps(self.document, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def input(self) -> dict[str, Any]:
        """The input schema: the POST body's, else the component named like ``*Input``."""
        post = self.document.get("paths", {}).get(f"/{self.endpoint_id}", {}).get("post", {})
        body = post.get("requestBody", {}).get("content", {}).get("application/json", {})
        if isinstance(body.get("schema"), dict):
            return self.resolve(body["schema"])
        for name, schema in self.components.items():
            if name.lower() in ("input", "request") or name.lower().endswith("input"):
                return self.resolve(schema)
        return {}

    @property
    def components(self) -> dict[str, Any]:
        schemas = self.document.get("components", {}).get("schemas", {})
        return schemas if isinstance(schemas, dict) else {}

    def resolve(self, schema: Any) -> dict[str, Any]:
        """``schema`` with a top-level ``$ref`` into ``components.schemas`` followed."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = {
                **self.components.get(name, {}),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def fields(self) -> list[tuple[str, dict[str, Any]]]:
        """``(name, schema)`` of each input field, in ``x-fal-order-properties`` order."""
        schema = self.input
        properties = schema.get("properties", {})
        order = [n for n in schema.get("x-fal-order-properties", []) if n in properties]
        order += [n for n in properties if n not in order]
        return [(name, self.resolve(properties[name])) for name in order]

    def field(self, name: str) -> dict[str, Any] | None:
        return dict(self.fields()).get(name)

    def problems(self, arguments: Mapping[str, Any]) -> list[str]:
        return problems(self, arguments)


# -- checking --------------------------------------------------------------------------------


def describe(schema: Mapping[str, Any], owner: EndpointSchema) -> str:
    """What a schema allows, in a few words: ``an integer from 1 to 4``, ``'jpeg' or 'png'``."""
    schema = owner.resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            kinds = [
                describe(s, owner) for s in schema[key] if owner.resolve(s).get("type") != "null"
            ]
            return " or ".join(dict.fromkeys(kinds))
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high = _bounds(schema)
        if low is not None and high is not None:
            return f"{noun} from {low:g} to {high:g}"
        if low is not None:
            return f"{noun} >= {low:g}"
        if high is not None:
            return f"{noun} <= {high:g}"
        return noun
    if kind == "object":
        names = list(schema.get("properties", {}))
        return "{" + ", ".join(names) + "}" if names else "a mapping"
    return {"string": "text", "boolean": "true or false", "array": "a list"}.get(
        str(kind), "a value"
    )


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    low = low if isinstance(low, (int, float)) and not isinstance(low, bool) else None
    high = high if isinstance(high, (int, float)) and not isinstance(high, bool) else None
    return low, high


def _number(value: Any) -> float | None:
    """A number as pydantic's lax mode reads it (numeric strings too); None if it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMERIC.match(value):
        return float(value)
    return None


def _check(schema: Mapping[str, Any], value: Any, where: str, owner: EndpointSchema) -> list[str]:
    schema = owner.resolve(schema)
    if not isinstance(value, _JSON_TYPES):
        return []  # a file, image or path: uploaded and sent as its URL
    if value is None and (schema.get("nullable") or "default" in schema):
        return []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [_check(b, value, where, owner) for b in schema[key]]
            if any(not b for b in branches):
                return []
            # A value of one branch's shape gets that branch's own complaint (image_size.width).
            shaped = [
                b
                for s, b in zip(schema[key], branches, strict=True)
                if _shaped(owner.resolve(s), value)
            ]
            if len(shaped) == 1:
                return shaped[0]
            return [f"{where}: {_shown(value)} is not {describe(schema, owner)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {_shown(value)} is not {describe(schema, owner)}"]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        number = _number(value)
        if number is None or (kind == "integer" and not number.is_integer()):
            return [f"{where}: {_shown(value)} is not {describe(schema, owner)}"]
        low, high = _bounds(schema)
        below = low is not None and (
            number <= low
            if "exclusiveMinimum" in schema and "minimum" not in schema
            else number < low
        )
        above = high is not None and (
            number >= high
            if "exclusiveMaximum" in schema and "maximum" not in schema
            else number > high
        )
        if below or above:
            return [f"{where}: {_shown(value)} is out of range: {describe(schema, owner)}"]
        return []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {_shown(value)} is not text"]
        if len(value.strip()) < int(schema.get("minLength", 0)):
            return [f"{where}: must not be empty"]
        if "pattern" in schema and not re.search(str(schema["pattern"]), value):
            return [f"{where}: {_shown(value)} does not match {schema['pattern']}"]
        return []
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: {_shown(value)} is not true or false"]
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            return [f"{where}: {_shown(value)} is not a list"]
        items = schema.get("items")
        if isinstance(items, dict):
            return [p for i, v in enumerate(value) for p in _check(items, v, f"{where}.{i}", owner)]
        return []
    if kind == "object" or "properties" in schema:
        if not isinstance(value, Mapping):
            return [f"{where}: {_shown(value)} is not {describe(schema, owner)}"]
        return _object(schema, value, f"{where}.", owner)
    return []


def _shaped(schema: Mapping[str, Any], value: Any) -> bool:
    kind = schema.get("type")
    if isinstance(value, Mapping):
        return kind == "object" or "properties" in schema
    if isinstance(value, str):
        return kind == "string"
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, (int, float)):
        return kind in ("integer", "number")
    return False


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _object(
    schema: Mapping[str, Any], value: Mapping[str, Any], prefix: str, owner: EndpointSchema
) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    found: list[str] = []
    closed = properties and schema.get("additionalProperties") is not True
    for name, item in value.items():
        if name in properties:
            found += _check(properties[name], item, f"{prefix}{name}", owner)
        elif closed:
            near = did_you_mean(str(name), list(properties), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            found.append(f"{prefix}{name}: not an argument of this endpoint{hint}")
    for name in schema.get("required", []):
        if name not in value:
            allowed = describe(properties.get(name, {}), owner)
            found.append(f"{prefix}{name}: required ({allowed})")
    return found


def problems(schema: EndpointSchema, arguments: Mapping[str, Any]) -> list[str]:
    """Every way ``arguments`` break ``schema``'s input, one line each (empty: they fit)."""
    return _object(schema.input, arguments, "", schema)


# -- fetching --------------------------------------------------------------------------------


def models_url(target: Any) -> str:
    """Where ``target`` serves ``GET /v1/models`` (fal's Platform API, or a REST root)."""
    return f"{platform_url(target)}/models"


class Schemas:
    """Endpoints' schemas by target and id, asked for once per session."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], EndpointSchema | None] = {}
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[EndpointSchema]:
        with self._lock:
            return iter([s for s in self._known.values() if s is not None])

    def get(self, client: Any, endpoint: str) -> EndpointSchema | None:
        """``endpoint``'s schema on ``client``'s target; None when it cannot be had.

        Raises :class:`UnknownEndpointError` when the target says it has no such endpoint.
        """
        key = (models_url(client.target), endpoint)
        with self._lock:
            if key in self._known:
                return self._known[key]
        schema = self._ask(client, endpoint)
        with self._lock:
            self._known[key] = schema
        return schema

    def forget(self) -> None:
        with self._lock:
            self._known.clear()

    def _ask(self, client: Any, endpoint: str) -> EndpointSchema | None:
        body = _get(client, {"endpoint_id": endpoint, "expand": "openapi-3.0"})
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            return None
        for model in body["models"]:
            if isinstance(model, dict) and model.get("endpoint_id") == endpoint:
                document = model.get("openapi")
                if isinstance(document, dict) and "error" not in document:
                    return EndpointSchema(endpoint, document)
                return None
        if client.target.name != "local":
            # fal's catalogue leaves out private apps, which are still served: no verdict.
            return None
        raise UnknownEndpointError(endpoint, did_you_mean(endpoint, self.catalogue(client)))

    def near(self, client: Any, endpoint: str) -> list[str]:
        """Listed endpoint ids close to ``endpoint``, for a "did you mean" where nothing can be
        refused: the local catalogue, or on fal's cloud the catalogue's search for its alias
        (``GET /v1/models?q=``; private apps are not listed, so this only ever suggests)."""
        if client.target.name == "local":
            return did_you_mean(endpoint, self.catalogue(client))
        alias = [*endpoint.split("/"), ""][1]
        body = _get(client, {"q": " ".join(re.findall(r"[A-Za-z0-9]+", alias)), "limit": "50"})
        models = body.get("models") if isinstance(body, dict) else None
        ids = [m.get("endpoint_id") for m in models or [] if isinstance(m, dict)]
        return did_you_mean(endpoint, [i for i in ids if isinstance(i, str) and i != endpoint])

    def catalogue(self, client: Any) -> list[str]:
        """The endpoint ids a local server serves (fal's cloud: none listed here)."""
        if client.target.name != "local":
            return []
        body = _get(client, {})
        models = body.get("models") if isinstance(body, dict) else None
        ids = [m.get("endpoint_id") for m in models or [] if isinstance(m, dict)]
        return [i for i in ids if isinstance(i, str)]


def _get(client: Any, params: dict[str, str]) -> Any:
    transport = client.async_client._transport()
    try:
        response = _runtime.run(
            transport.request(
                "GET",
                models_url(client.target),
                params=params,
                retry=NO_RETRY,
                timeout=_ASK_TIMEOUT,
            )
        )
        return response.json()
    except (FalError, OSError, ValueError):
        return None  # an old server, offline, an error: no schema, so no check
