"""The result of one fal request, with its media downloaded: what a ``%%fal`` cell returns.

>>> result = falnb.Session().run("local/text-to-image", {"prompt": "a red fox"}, seed=42)
>>> result.images[0].size, result.seed
((1024, 768), 42)
>>> result.save("out/")
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falnb._display import Bundle, Displayed
from falnb._paths import shown
from falnb._values import KIND_BY_KEY, MediaKind, data_uri, decode_data_uri, fal_files

if TYPE_CHECKING:
    from PIL import Image

    from falnb.pricing import Price
    from falnb.seedchecks import SeedCheck

__all__ = ["MediaFile", "Result", "decode_data_uri", "find_files", "jsonable"]


@dataclass(frozen=True)
class MediaFile:
    """One file of an output (fal's ``File``/``Image`` object), with its downloaded bytes."""

    key: str
    url: str
    content_type: str
    kind: MediaKind
    data: bytes = field(repr=False)
    file_name: str | None = None
    width: int | None = None
    height: int | None = None

    def suffix(self) -> str:
        if self.file_name and "." in self.file_name:
            return "." + self.file_name.rsplit(".", 1)[1]
        return mimetypes.guess_extension(self.content_type) or ".bin"


def _kind(key: str, content_type: str) -> MediaKind:
    major = content_type.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]
    return KIND_BY_KEY.get(key, "file")


#: Every fal ``File`` object in an output, as :func:`falnb._values.fal_files` finds them.
find_files = fal_files


def guess_content_type(file: dict[str, Any]) -> str:
    given = file.get("content_type")
    if isinstance(given, str) and given:
        return given
    url = str(file.get("url", ""))
    if url.startswith("data:"):
        return url[5:].split(";", 1)[0].split(",", 1)[0] or "application/octet-stream"
    name = str(file.get("file_name") or url.split("?", 1)[0])
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def binary_output(data: bytes, content_type: str | None) -> dict[str, Any]:
    """The output of a binary stream (e.g. speech audio), as one inline File.

    Its key follows fal's schemas by media kind (``audio``, ``video``, ``image``, else
    ``file``), so it renders and records like any other output file.
    """
    kind = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    key = kind.split("/")[0] if kind.split("/")[0] in ("audio", "video", "image") else "file"
    extension = (mimetypes.guess_extension(kind) or ".bin").lstrip(".")
    url = data_uri(data, kind)
    return {
        key: {
            "url": url,
            "content_type": kind,
            "file_name": f"stream.{extension}",
            "file_size": len(data),
        }
    }


def jsonable(value: Any) -> Any:
    """``value`` as JSON-safe data for metadata: paths as strings (relative to the working
    directory, or under ``~``), bytes and images described."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return shown(value)  # relative to the notebook, or under ~: saved outputs travel
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    size = getattr(value, "size", None)
    if hasattr(value, "mode") and isinstance(size, tuple):
        return f"<image {size[0]}x{size[1]}>"
    return repr(value)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Result(Displayed):
    """What a fal request returned, with its output files downloaded once.

    ``json`` is the output as the endpoint sent it; ``images`` the image outputs as PIL images;
    ``files`` every downloaded file; ``save(dir)`` writes them; ``seed`` and ``request_id``
    identify the run. In a notebook a Result renders as images, a player, text or JSON.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        arguments: dict[str, Any],
        output: dict[str, Any],
        request_id: str | None,
        seed: int | None,
        media: dict[str, bytes] | None = None,
        timings: dict[str, float] | None = None,
        logs: list[str] | None = None,
        billable_units: float | None = None,
        price: Price | None = None,
        replayed: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.arguments = arguments
        self.request_id = request_id
        #: What fal billed for it (``x-fal-billable-units``; a replay: what the recorded run
        #: billed); None when the server did not say.
        self.billable_units = billable_units
        #: A cancel was requested while it ran, but it completed first (fal only signals apps).
        self.cancel_requested = False
        #: The endpoint's unit price when it ran (None: not known).
        self.price = price
        #: Whether it came from the lock (and so cost nothing now).
        self.replayed = replayed
        self.seed = seed
        self.timings = dict(timings or {})
        self.logs = list(logs or [])
        self._output = output
        self._media = dict(media or {})
        #: The endpoint's ``%fal seedcheck`` verdict from the lock when it ran (None: never
        #: checked); shown as a badge under the result.
        self.seedcheck: SeedCheck | None = None
        #: Set by the magics when a live view already shows this result (see _ipython_display_).
        self._shown_in_cell: int | None = None

    @property
    def units(self) -> float | None:
        """How many of the endpoint's pricing units the run billed (None: not said)."""
        return self.billable_units

    @property
    def cost(self) -> float | None:
        """What this call cost: units x unit price; 0 for a replay; None when not known."""
        if self.replayed:
            return 0.0
        if self.billable_units is None or self.price is None:
            return None
        return self.price.cost(self.billable_units)

    @property
    def json(self) -> dict[str, Any]:
        """The endpoint's output, unchanged."""
        return self._output

    @property
    def files(self) -> list[MediaFile]:
        """Every output file that was downloaded, in output order."""
        found: list[MediaFile] = []
        for key, file in find_files(self._output):
            url = str(file["url"])
            if url not in self._media:
                continue
            content_type = guess_content_type(file)
            width, height = file.get("width"), file.get("height")
            found.append(
                MediaFile(
                    key=key,
                    url=url,
                    content_type=content_type,
                    kind=_kind(key, content_type),
                    data=self._media[url],
                    file_name=file.get("file_name") or None,
                    width=width if isinstance(width, int) else None,
                    height=height if isinstance(height, int) else None,
                )
            )
        return found

    @property
    def images(self) -> list[Image.Image]:
        """The image outputs, decoded with Pillow."""
        from PIL import Image  # only when asked

        return [Image.open(io.BytesIO(f.data)) for f in self.files if f.kind == "image"]

    @property
    def text(self) -> str | None:
        """A text output (whisper's ``text``, an LLM's ``output``), if the endpoint gave one."""
        for key in ("text", "output", "response"):
            value = self._output.get(key)
            if isinstance(value, str):
                return value
        return None

    def save(self, directory: str | Path) -> list[Path]:
        """Write every output file into ``directory`` (created if needed); return the paths."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for index, file in enumerate(self.files):
            stem = _SAFE_NAME.sub("-", self.endpoint.strip("/")).strip("-")
            seed = f"-seed{self.seed}" if self.seed is not None else ""
            path = target / f"{stem}{seed}-{file.key or 'file'}-{index}{file.suffix()}"
            path.write_bytes(file.data)
            paths.append(path)
        return paths

    def summary(self) -> str:
        """One stable line: endpoint, what came back, seed (no ids, no times)."""
        from falnb.render import describe  # render imports this module

        return describe(self)

    def __repr__(self) -> str:
        return f"<Result {self.summary()}>"

    def _bundle(self) -> Bundle:
        from falnb.render import mimebundle

        return mimebundle(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display  # only ever called by IPython

        from falnb._environment import ipython_shell

        shell = ipython_shell()
        # The cell's live view was already replaced by this result: don't show it twice.
        if shell is not None and self._shown_in_cell == getattr(shell, "execution_count", None):
            return
        data, metadata = self._repr_mimebundle_()
        display(data, metadata=metadata, raw=True)  # type: ignore[no-untyped-call]

    def metadata(self) -> dict[str, Any]:
        """What the notebook output's metadata records about this run."""
        return {
            "endpoint": self.endpoint,
            "arguments": jsonable(self.arguments),
            "seed": self.seed,
            "request_id": self.request_id,
            "timings": self.timings,
        }

    def dumps(self) -> str:
        """The output as indented JSON."""
        return json.dumps(self._output, indent=2, default=str)
