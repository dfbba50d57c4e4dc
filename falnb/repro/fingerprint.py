"""Fingerprints of calls: endpoint + canonical arguments, stable across runs and machines.

Local inputs that the client uploads (``pathlib.Path``, PIL images, ``bytes``) and inline
``data:`` URIs are replaced by the hash of their content, because their URLs change on every
upload. Everything else must be plain JSON (dicts, lists, tuples, str, int, float, bool, None).

Example::

    fp = fingerprint("fal-ai/flux/dev", {"prompt": "a fox", "image_url": Path("fox.png")})
    assert fp == fingerprint("fal-ai/flux/dev", {"image_url": Path("fox.png"), "prompt": "a fox"})
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any

from falnb._values import decode_data_uri, is_pil_image, sha256_hex
from falnb.repro.errors import ArgumentError
from falnb.repro.urls import LOCAL_SCHEME

__all__ = [
    "SCHEMA",
    "ArgumentError",
    "canonical_arguments",
    "canonical_json",
    "content_ref",
    "fingerprint",
]

#: Bumped when canonicalisation changes, so old lock entries stop matching instead of lying.
SCHEMA = "falnb-fingerprint-1"


#: Maps a URL to the sha256 of its content when known (e.g. outputs recorded earlier).
UrlHashes = Callable[[str], str | None]


def content_ref(sha256: str) -> dict[str, str]:
    """How an uploaded input appears in canonical arguments."""
    return {"$content": f"sha256:{sha256}"}


def _data_uri_bytes(uri: str) -> bytes | None:
    try:
        return decode_data_uri(uri)
    except ValueError:
        return None


def _image_hash(image: Any) -> str:
    # Pixels, not an encoding: PNG bytes may differ between Pillow versions for equal images.
    header = f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode()
    return sha256_hex(header + image.tobytes())


def _canonical(value: Any, where: str, url_hashes: UrlHashes | None) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str):
            if value.startswith("data:"):
                data = _data_uri_bytes(value)
                if data is not None:
                    return content_ref(sha256_hex(data))
            elif url_hashes is not None and value.startswith(("http://", "https://", LOCAL_SCHEME)):
                known = url_hashes(value)
                if known is not None:
                    return content_ref(known)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArgumentError(f"argument {where} is {value!r}, which JSON cannot carry")
        # 2.0 and 2 are the same number to an endpoint; keep one spelling.
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArgumentError(f"argument {where} has a non-string key {key!r}")
            out[key] = _canonical(item, f"{where}.{key}" if where else key, url_hashes)
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{where}[{i}]", url_hashes) for i, item in enumerate(value)]
    if isinstance(value, PurePath):
        try:
            data = Path(value).read_bytes()
        except OSError as exc:
            raise ArgumentError(f"argument {where}: cannot read {value}: {exc.strerror}") from None
        return content_ref(sha256_hex(data))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return content_ref(sha256_hex(bytes(value)))
    if is_pil_image(value):
        return content_ref(_image_hash(value))
    raise ArgumentError(
        f"argument {where} is a {type(value).__name__}; use JSON values, a Path, bytes "
        "or a PIL image"
    )


def canonical_arguments(
    arguments: Mapping[str, Any], *, url_hashes: UrlHashes | None = None
) -> dict[str, Any]:
    """``arguments`` as plain JSON, with uploaded inputs replaced by content hashes.

    ``url_hashes`` maps URLs whose content is already known (outputs of earlier calls fed
    into this one) to their sha256, so refreshing the earlier call does not change this
    call's fingerprint.
    """
    result: dict[str, Any] = _canonical(arguments, "", url_hashes)
    return result


def canonical_json(value: Any) -> str:
    """Sorted-key, whitespace-free JSON: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(
    endpoint: str, arguments: Mapping[str, Any], *, url_hashes: UrlHashes | None = None
) -> str:
    """The lock key of a call: sha256 over the schema, endpoint and canonical arguments."""
    payload = canonical_json(
        {
            "schema": SCHEMA,
            "endpoint": endpoint.strip("/"),
            "arguments": canonical_arguments(arguments, url_hashes=url_hashes),
        }
    )
    return sha256_hex(payload.encode())
