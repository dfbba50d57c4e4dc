"""Uploads are served from the server's own origin, so they must never run script there.

Every download carries ``nosniff`` and a sandboxing CSP; anything a browser could execute
(HTML, SVG, XML, PDF, unknown types) comes as an attachment, while raster images, audio
and video stay inline so notebooks and pages still show them.
"""

from __future__ import annotations

import httpx
import pytest

SCRIPTED = [
    ("text/html", "page.html", b"<script>alert(document.cookie)</script>"),
    ("image/svg+xml", "x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("application/xhtml+xml", "x.xhtml", b"<html xmlns='http://www.w3.org/1999/xhtml'/>"),
    ("text/xml", "x.xml", b"<a/>"),
    ("application/pdf", "x.pdf", b"%PDF-1.4"),
    ("application/octet-stream", "blob.bin", b"<html><script>1</script>"),
    ("TEXT/HTML; charset=utf-8", "shout.html", b"<script>1</script>"),
    ("text/html\r\nX-Injected: 1", "crlf.html", b"<script>1</script>"),
]
INLINE = [
    ("image/png", "a.png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", "a.jpg", b"\xff\xd8\xff"),
    ("image/webp", "a.webp", b"RIFF0000WEBP"),
    ("video/mp4", "a.mp4", b"\x00\x00\x00\x18ftypmp42"),
    ("audio/wav", "a.wav", b"RIFF0000WAVE"),
]


def _initiated_upload(http: httpx.Client, content_type: str, name: str, data: bytes) -> str:
    """Upload through initiate + signed PUT (the type comes from the JSON body, unchecked)."""
    initiated = http.post(
        "/_rest/storage/upload/initiate", json={"file_name": name, "content_type": content_type}
    ).json()
    assert httpx.put(initiated["upload_url"], content=data).status_code == 200
    return str(initiated["file_url"])


def _cdn_upload(http: httpx.Client, content_type: str, name: str, data: bytes) -> str:
    response = http.post(
        "/_cdn/files/upload",
        content=data,
        headers={"Content-Type": content_type, "X-Fal-File-Name": name},
    )
    return str(response.json()["access_url"])


def _assert_hardened(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"
    assert "x-injected" not in response.headers


@pytest.mark.parametrize(("content_type", "name", "data"), SCRIPTED)
def test_scriptable_uploads_are_attachments(
    http: httpx.Client, content_type: str, name: str, data: bytes
) -> None:
    url = _initiated_upload(http, content_type, name, data)
    response = httpx.get(url)  # no key: files are public
    assert response.status_code == 200
    assert response.content == data
    _assert_hardened(response)
    assert response.headers["content-disposition"].startswith("attachment;")
    assert name in response.headers["content-disposition"]
    served = response.headers["content-type"].split(";")[0]
    assert served == served.lower()
    assert "\n" not in response.headers["content-type"]


@pytest.mark.parametrize(("content_type", "name", "data"), SCRIPTED[:2])
def test_cdn_uploads_of_html_and_svg_are_attachments_too(
    http: httpx.Client, content_type: str, name: str, data: bytes
) -> None:
    response = httpx.get(_cdn_upload(http, content_type, name, data))
    _assert_hardened(response)
    assert response.headers["content-disposition"].startswith("attachment;")
    # HEAD answers the same headers (browsers and clients probe with it).
    head = httpx.head(_cdn_upload(http, content_type, name, data))
    assert head.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(("content_type", "name", "data"), INLINE)
def test_media_stays_inline(http: httpx.Client, content_type: str, name: str, data: bytes) -> None:
    response = httpx.get(_cdn_upload(http, content_type, name, data))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert "content-disposition" not in response.headers
    _assert_hardened(response)


def test_app_outputs_get_the_same_headers(http: httpx.Client) -> None:
    """Files an app stores (ctx.store) are served by the same route."""
    output = http.post("/local/text-to-image", json={"prompt": "a red fox"}).json()
    response = httpx.get(output["images"][0]["url"])
    assert response.headers["content-type"].startswith("image/")
    assert "content-disposition" not in response.headers
    _assert_hardened(response)
