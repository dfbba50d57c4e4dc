"""Facts of fal's wire protocol that the client and the local server both rely on.

One home for each: the endpoint-id grammar, namespaces, the queue's URL layout and the
realtime URL derived from an HTTP one (fal-protocol.md sections 3 and 4). Both
:mod:`falnb.client` and :mod:`falnb.local` import them from here, never from each other.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "BILLABLE_UNITS",
    "IMAGE_SIZE_PRESETS",
    "LIFECYCLE_HEADER",
    "LIFECYCLE_HEADERS",
    "LOCAL_CDN",
    "LOCAL_QUEUE",
    "LOCAL_REST",
    "NAMESPACES",
    "billable_units",
    "billable_units_header",
    "describe_field_errors",
    "endpoint_alias",
    "endpoint_app",
    "field_name",
    "is_endpoint_id",
    "local_urls",
    "request_urls",
    "strip_namespace",
    "ws_url",
]

#: The header on a result saying how many units fal bills for it (images, megapixels, seconds:
#: the endpoint's pricing unit), as the submit answer's id is in ``x-fal-request-id``.
BILLABLE_UNITS = "x-fal-billable-units"


#: A request's (or upload's) storage preference for the files it creates:
#: ``{"expiration_duration_seconds": N|null, "initial_acl": {"default": "allow|forbid|hide"}}``.
LIFECYCLE_HEADER = "x-fal-object-lifecycle-preference"
#: Both names an upload carries (fal-client: the CDN reads the second, REST storage the first).
LIFECYCLE_HEADERS = (LIFECYCLE_HEADER, "x-fal-object-lifecycle")


def billable_units(headers: Any) -> float | None:
    """The ``x-fal-billable-units`` of a response's headers, or None when absent or unreadable."""
    raw = headers.get(BILLABLE_UNITS) if headers is not None else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def billable_units_header(units: float) -> str:
    """``units`` as fal's framework writes the header: whole numbers bare, fractions to 8
    places (``3``, ``0.26214400``)."""
    return f"{units:.0f}" if float(units).is_integer() else f"{units:.8f}"


#: fal's named ``image_size`` presets, as (width, height).
IMAGE_SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


#: fal's namespaces: a prefix of an endpoint id, ignored when looking endpoints and requests
#: up (fal-protocol.md 3.1).
NAMESPACES = ("workflows", "comfy")
_LEGACY_ID = re.compile(r"^([0-9]+)-([a-zA-Z0-9-]+)$")
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


#: Where a falnb local server serves fal's queue, REST and CDN hosts, under its one origin
#: (the run host is the origin itself, realtime its WebSocket twin).
LOCAL_QUEUE, LOCAL_REST, LOCAL_CDN = "/_queue", "/_rest", "/_cdn"


def local_urls(base_url: str) -> dict[str, str]:
    """The five fal URLs of a local server at ``base_url``, as :class:`falnb.Target` names them."""
    base = base_url.rstrip("/")
    return {
        "run_url": base,
        "queue_url": base + LOCAL_QUEUE,
        "rest_url": base + LOCAL_REST,
        "cdn_url": base + LOCAL_CDN,
        "realtime_url": ws_url(base),
    }


def strip_namespace(endpoint_path: str) -> str:
    """``workflows/owner/alias/x`` -> ``owner/alias/x``; other paths unchanged."""
    path = endpoint_path.strip("/")
    head, _, rest = path.partition("/")
    return rest if head in NAMESPACES and rest else path


def endpoint_app(endpoint: str) -> str:
    """The ``[namespace/]owner/alias`` part of an endpoint id, which queue URLs use.

    >>> endpoint_app("fal-ai/flux/dev")
    'fal-ai/flux'
    """
    endpoint = endpoint.strip("/")
    legacy = _LEGACY_ID.match(endpoint)
    if legacy:
        endpoint = f"{legacy[1]}/{legacy[2]}"
    parts = endpoint.split("/")
    size = 3 if parts[0] in NAMESPACES else 2
    if len(parts) < size or not all(parts):
        raise ValueError(
            f"invalid endpoint id {endpoint!r}: use 'owner/alias' or 'owner/alias/path', "
            "e.g. 'fal-ai/flux/dev'"
        )
    return "/".join(parts[:size])


def is_endpoint_id(text: str) -> bool:
    """Whether ``text`` reads as an endpoint id a caller may address (``owner/alias[/path]``,
    optionally under a namespace; segments of letters, digits, ``.``, ``_`` and ``-``)."""
    segments = text.split("/")
    if not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        return False
    try:
        endpoint_app(text)
    except ValueError:
        return False
    return True


def endpoint_alias(endpoint_id: str) -> str:
    """The app alias of an endpoint id (what realtime tokens are scoped to).

    >>> endpoint_alias("workflows/fal-ai/flux/dev")
    'flux'
    """
    parts = strip_namespace(endpoint_id).split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise ValueError(f"invalid endpoint id {endpoint_id!r}: use 'owner/alias[/path]'")
    return parts[1]


def request_urls(queue_url: str, app: str, request_id: str) -> dict[str, str]:
    """A queued request's ``response_url``, ``status_url`` and ``cancel_url``.

    ``app`` is the endpoint's ``[namespace/]owner/alias`` (:func:`endpoint_app`).
    """
    base = f"{queue_url.rstrip('/')}/{app}/requests/{request_id}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def field_name(loc: Any) -> str:
    """The field a 422 error's ``loc`` names: ``["body", "image", 0]`` -> ``image.0``."""
    parts = [str(p) for p in (loc or []) if p != "body"]
    return ".".join(parts) or "input"


def describe_field_errors(detail: Any) -> str:
    """A 422 ``detail`` list as one line: ``prompt: Field required; seed: ...``."""
    if not isinstance(detail, list):
        return str(detail)
    return "; ".join(
        f"{field_name(e.get('loc'))}: {e.get('msg', e)}" if isinstance(e, dict) else str(e)
        for e in detail
    )


def ws_url(http_url: str) -> str:
    """The WebSocket URL of a server at ``http_url``: ``http`` -> ``ws``, ``https`` -> ``wss``."""
    return "ws" + http_url[len("http") :] if http_url.startswith("http") else http_url
