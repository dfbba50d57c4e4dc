"""Saved outputs stay visible where HTML is sanitized (as GitHub does) or converted by nbconvert.

GitHub's sanitizer (html-pipeline's allowlist, below) strips ``style``, event handlers,
scripts, ``<video>`` and ``<audio>``, and allows ``img`` sources by protocol, so ``data:``
images may be dropped. Each saved output of a real kernel run is sanitized both ways.
"""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from typing import Any

import bleach
import pytest
from nbconvert import HTMLExporter, MarkdownExporter
from PIL import Image, ImageStat

# html-pipeline's SanitizationFilter allowlist (what github.com applies to rendered HTML).
_GITHUB_TAG_LIST = (
    "h1 h2 h3 h4 h5 h6 h7 h8 br b i strong em a pre code img tt div ins del sup sub p ol ul "
    "table thead tbody tfoot blockquote dl dt dd kbd q samp var hr ruby rt rp li tr td th s "
    "strike summary details caption figure figcaption abbr bdo cite dfn mark small span time wbr"
)
GITHUB_TAGS = frozenset(_GITHUB_TAG_LIST.split())
GITHUB_ATTRIBUTES = {
    "a": ["href"],
    "img": ["src", "longdesc", "alt", "width", "height", "title", "align"],
    "*": ["abbr", "align", "alt", "height", "width", "title", "open", "lang", "dir", "name"],
}


def sanitize(markup: str, *, data_images: bool) -> str:
    protocols = {"http", "https", "mailto"} | ({"data"} if data_images else set())
    return bleach.clean(
        markup,
        tags=GITHUB_TAGS,
        attributes=GITHUB_ATTRIBUTES,
        protocols=protocols,
        strip=True,
        strip_comments=True,
    )


class Page(HTMLParser):
    """The images and visible text of a piece of HTML."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.tags: set[str] = set()
        self.text = ""
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})

    def handle_data(self, data: str) -> None:
        self.text += data

    def pictures(self) -> list[dict[str, str]]:
        return [i for i in self.images if i.get("src", "").startswith("data:image/")]


def picture(bundle: dict[str, Any]) -> Image.Image:
    [mime] = [m for m in bundle if m in ("image/jpeg", "image/png")]
    return Image.open(io.BytesIO(base64.b64decode(bundle[mime])))


@pytest.fixture(scope="module")
def executed(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One notebook with every kind of output, run in a real kernel against the server."""
    from nbkit import RecordingClient, build_notebook, kernel_env

    patch = pytest.MonkeyPatch()
    for name, value in kernel_env(server).items():
        patch.setenv(name, value)
    folder = tmp_path_factory.mktemp("static")
    patch.setenv("FALNB_LOCK", str(folder / "falnb.lock"))
    for name in ("JPY_SESSION_NAME", "FALNB_PROGRESS", "VSCODE_PID"):
        patch.delenv(name, raising=False)
    notebook = build_notebook(
        [
            "import falnb",
            (
                "%%fal local/text-to-image --seed 7\nprompt: a red fox\nnum_images: 2\n"
                "image_size: square\nnum_inference_steps: 4"
            ),
            "%%fal local/text-to-video --seed 7\nprompt: waves at dusk",
            "%%fal local/text-to-audio --seed 7\nprompt: a calm tune",
            "%fal local/echo prompt=hello --seed 7",
        ]
    )
    try:
        RecordingClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": folder}}
        ).execute()
    finally:
        patch.undo()
    return notebook


def bundle_of(notebook: Any, index: int) -> dict[str, Any]:
    [output] = [o for o in notebook.cells[index].outputs if "text/html" in o.get("data", {})]
    return dict(output["data"])


def test_the_image_grid_survives_sanitizing(executed: Any) -> None:
    bundle = bundle_of(executed, 1)
    kept = Page(sanitize(bundle["text/html"], data_images=True))
    assert "style" not in sanitize(bundle["text/html"], data_images=True)
    assert len(kept.pictures()) == 2
    for image in kept.pictures():  # sized by attributes, which survive where style does not
        assert (image["width"], image["height"]) == ("320", "320")
        assert "512x512 · seed 7" in image["alt"]
    assert kept.text.count("512x512 · seed 7") == 2

    dropped = Page(sanitize(bundle["text/html"], data_images=False))
    assert dropped.pictures() == []
    assert [i["alt"] for i in dropped.images] == [
        "local/text-to-image image 1 (512x512 · seed 7)",
        "local/text-to-image image 2 (512x512 · seed 7)",
    ]
    # Where the HTML's images are gone, the bundle's own picture holds both, side by side.
    sheet = picture(bundle)
    assert sheet.width > 2 * sheet.height * 0.95
    assert bundle["text/plain"] == (
        "local/text-to-image: 2 images (512x512, 512x512), seed 7\n"
        "2 images \u00d7 $0.025 = $0.05"  # what it cost, under the output
    )


def test_video_keeps_a_poster_frame(executed: Any) -> None:
    bundle = bundle_of(executed, 2)
    assert "<video" in bundle["text/html"]
    assert 'poster="data:image/jpeg;base64,' in bundle["text/html"]
    kept = Page(sanitize(bundle["text/html"], data_images=True))
    assert "video" not in kept.tags
    [poster] = kept.pictures()
    assert poster["src"].startswith("data:image/jpeg;base64,")
    assert "video · video/mp4 · 3.0 s" in kept.text

    dropped = Page(sanitize(bundle["text/html"], data_images=False))
    assert "video poster" in dropped.images[0]["alt"]
    assert "video · video/mp4 · 3.0 s" in dropped.text
    frame = picture(bundle)
    assert frame.size == (512, 288)
    assert max(ImageStat.Stat(frame.convert("L")).stddev) > 5  # a real frame, not a blank


def test_audio_keeps_a_clear_text_line(executed: Any) -> None:
    bundle = bundle_of(executed, 3)
    assert "<audio" in bundle["text/html"]
    assert not any(m.startswith("image/") for m in bundle)
    for data_images in (True, False):
        page = Page(sanitize(bundle["text/html"], data_images=data_images))
        assert "audio" not in page.tags
        assert "audio · audio/wav · 5.0 s · " in page.text
        assert "seed 7" in page.text


def test_json_output_stays_readable(executed: Any) -> None:
    page = Page(sanitize(bundle_of(executed, 4)["text/html"], data_images=False))
    assert "local/echo output (JSON)" in page.text
    assert '"prompt": "hello"' in page.text


def test_nbconvert_html_and_markdown_show_the_pictures(executed: Any) -> None:
    html_body, _ = HTMLExporter().from_notebook_node(executed)
    markdown, _ = MarkdownExporter().from_notebook_node(executed)
    for body in (html_body, markdown):
        page = Page(body)
        alts = [i.get("alt", "") for i in page.pictures()]
        assert sum("local/text-to-image image" in a for a in alts) == 2
        assert any("video poster" in a for a in alts)
        assert "audio · audio/wav · 5.0 s" in body
