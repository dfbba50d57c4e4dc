"""One walker decides what a file is: the lock pins exactly the media a Result shows."""

from __future__ import annotations

from typing import Any

import pytest

from falnb._values import decode_data_uri, describe_size, fal_files, sniff, sniff_image_type
from falnb.repro import find_media
from falnb.result import find_files

OUTPUTS: list[dict[str, Any]] = [
    {"images": [{"url": "https://cdn/a.png", "content_type": "image/png"}], "seed": 1},
    # A link that is not a File (no content type, no name, not a media field): neither shows it.
    {"source": {"url": "https://example.com/page"}, "video": {"url": "https://cdn/v.mp4"}},
    # A File whose nested thumbnail is a dict with a url: the File is one file, not two.
    {"image": {"url": "https://cdn/b.png", "file_name": "b.png", "preview": {"url": "https://p"}}},
    {"audio_url": {"url": "data:audio/wav;base64,UklGRg=="}, "file": {"url": "falnb-local:x"}},
]


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_lock_pins_what_the_result_shows(output: dict[str, Any]) -> None:
    shown = [file["url"] for _key, file in find_files(output)]
    fetchable = [u for u in shown if not u.startswith("data:")]
    assert [url for url, _ctype in find_media(output)] == fetchable


def test_the_walker_names_each_files_field() -> None:
    keys = [key for key, _file in fal_files(OUTPUTS[0])] + [k for k, _ in fal_files(OUTPUTS[1])]
    assert keys == ["images", "video"]


def test_data_uris_and_signatures() -> None:
    assert decode_data_uri("data:text/plain,a%20b") == b"a b"
    assert decode_data_uri("data:image/png;base64,iVBORw0KGgo=") == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="','"):
        decode_data_uri("data:image/png;base64")
    assert sniff(b"\x89PNG\r\n\x1a\n....") == ("image/png", "png")
    assert sniff(b"RIFF\0\0\0\0WAVEfmt ") == ("audio/wav", "wav")
    assert sniff(b"plain text") is None
    # A WAV is not an image: the declared type stands.
    assert sniff_image_type(b"RIFF\0\0\0\0WAVEfmt ", "image/png") == "image/png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0") == "image/jpeg"


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0 B"), (999, "999 B"), (157_400, "157 kB"), (5_240_000, "5.2 MB")]
)
def test_a_size_reads_the_same_in_a_caption_and_in_the_lock_notes(count: int, shown: str) -> None:
    assert describe_size(count) == shown
