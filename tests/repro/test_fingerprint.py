"""Fingerprints: stable under key order and re-uploads, sensitive to content."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from PIL import Image

from falnb.repro import canonical_arguments, fingerprint


def test_key_order_and_number_spelling_do_not_matter() -> None:
    a = fingerprint("fal-ai/flux/dev", {"prompt": "fox", "options": {"b": 1, "a": 2.0}})
    b = fingerprint("/fal-ai/flux/dev/", {"options": {"a": 2, "b": 1}, "prompt": "fox"})
    assert a == b
    assert len(a) == 64


def test_arguments_and_endpoint_change_the_fingerprint() -> None:
    base = fingerprint("local/echo", {"prompt": "fox"})
    assert fingerprint("local/echo", {"prompt": "fox "}) != base
    assert fingerprint("local/echo", {"prompt": "fox", "seed": 1}) != base
    assert fingerprint("local/slow", {"prompt": "fox"}) != base


def test_uploaded_inputs_are_fingerprinted_by_content(tmp_path: Path) -> None:
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    one.write_bytes(b"same bytes")
    two.write_bytes(b"same bytes")
    data_uri = "data:image/png;base64," + base64.b64encode(b"same bytes").decode()
    fps = {
        fingerprint("e/x", {"image_url": value})
        for value in (one, two, b"same bytes", bytearray(b"same bytes"), data_uri)
    }
    assert len(fps) == 1
    one.write_bytes(b"other bytes")
    assert fingerprint("e/x", {"image_url": one}) not in fps
    canonical = canonical_arguments({"image_url": two, "n": [1, (2, 3)]})
    assert canonical["image_url"]["$content"].startswith("sha256:")
    assert canonical["n"] == [1, [2, 3]]


def test_pil_images_by_pixels() -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    same = Image.new("RGB", (4, 4), (255, 0, 0))
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    assert fingerprint("e/x", {"image": red}) == fingerprint("e/x", {"image": same})
    assert fingerprint("e/x", {"image": red}) != fingerprint("e/x", {"image": blue})


def test_known_urls_are_replaced_by_their_content_hash() -> None:
    known = {"https://v3.fal.media/files/a/out.png": "ab" * 32}
    first = fingerprint("e/x", {"image_url": "https://v3.fal.media/files/a/out.png"})
    with_hash = fingerprint(
        "e/x", {"image_url": "https://v3.fal.media/files/a/out.png"}, url_hashes=known.get
    )
    # Same content under a new URL (a refreshed upstream call) keeps the fingerprint.
    renamed = {"https://v3.fal.media/files/b/out.png": "ab" * 32}
    moved = fingerprint(
        "e/x", {"image_url": "https://v3.fal.media/files/b/out.png"}, url_hashes=renamed.get
    )
    assert with_hash == moved != first


def test_non_json_values_are_refused_with_the_argument_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"options\.when"):
        fingerprint("e/x", {"options": {"when": object()}})
    with pytest.raises(TypeError, match="nan"):
        fingerprint("e/x", {"scale": float("nan")})
    with pytest.raises(ValueError, match="image_url: cannot read"):
        fingerprint("e/x", {"image_url": tmp_path / "missing.png"})
