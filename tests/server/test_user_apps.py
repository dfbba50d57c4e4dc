"""falnb.local.app: your own functions served as fal endpoints, end to end through the client."""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pydantic
import pytest
from PIL import Image

import falnb.local
from falnb import AsyncClient, HTTPError, SyncClient, ValidationError, _runtime
from falnb.client import InProgress
from falnb.local import AppError, Context, LocalServer
from falnb.local.apps import default_registry
from tests.kit import run_captured

Fn = Callable[..., Any]
Register = Callable[..., Callable[[Fn], Fn]]

#: A JSON stream event (streams may also carry bytes, from binary endpoints).
Json = dict[str, Any]


class Prompt(pydantic.BaseModel):
    prompt: str
    steps: int = 2


@pytest.fixture
def register() -> Iterator[Register]:
    """``register(id, **options)``: ``falnb.local.app`` that unregisters after the test."""
    added: list[str] = []

    def decorator(endpoint_id: str, **options: Any) -> Callable[[Fn], Fn]:
        added.append(endpoint_id)
        return falnb.local.app(endpoint_id, **options)

    yield decorator
    for endpoint_id in added:
        falnb.local.unregister(endpoint_id)


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


@pytest.fixture
def aclient(server: LocalServer) -> Iterator[AsyncClient]:
    client = AsyncClient(server.target)
    yield client
    _runtime.run(client.aclose())


def logs_of(client: SyncClient, endpoint_id: str, arguments: dict[str, Any]) -> list[Any]:
    """Subscribe with logs; returns ``[result, [(level, message), ...]]``."""
    lines: list[tuple[str, str]] = []

    def on_update(status: Any) -> None:
        lines.extend((log["level"], log["message"]) for log in getattr(status, "logs", None) or [])

    result = client.subscribe(endpoint_id, arguments, with_logs=True, on_queue_update=on_update)
    return [result, lines]


def download(file: dict[str, Any]) -> httpx.Response:
    response = httpx.get(file["url"], timeout=10)
    response.raise_for_status()
    return response


def test_sync_function_runs_and_queues(register: Register, client: SyncClient) -> None:
    @register("test-me/double")
    def double(arguments: dict[str, Any]) -> dict[str, Any]:
        """Doubles `value`.

        More text that is not the description.
        """
        return {"value": arguments["value"] * 2}

    assert double({"value": 1}) == {"value": 2}  # still a plain function
    assert client.run("test-me/double", {"value": 21}) == {"value": 42}
    assert client.subscribe("test-me/double", {"value": 5}) == {"value": 10}
    endpoint = default_registry().get("test-me/double")
    assert endpoint is not None
    assert endpoint.description == "Doubles `value`."


def test_async_function(register: Register, client: SyncClient, aclient: AsyncClient) -> None:
    @register("test-me/async", description="explicit")
    async def later(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"request_id": ctx.request_id, "x": arguments["x"]}

    result = asyncio.run(aclient.subscribe("test-me/async", {"x": 3}))
    assert result["x"] == 3
    assert len(result["request_id"]) == 36  # the queue's request id, via ctx
    assert client.run("test-me/async", {"x": 4})["x"] == 4
    endpoint = default_registry().get("test-me/async")
    assert endpoint is not None
    assert endpoint.description == "explicit"


def test_generator_streams_and_run_returns_the_last_item(
    register: Register, client: SyncClient
) -> None:
    @register("test-me/count")
    def count(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for i in range(1, arguments["n"] + 1):
            yield {"i": i, "done": i == arguments["n"]}

    stream = client.stream("test-me/count", {"n": 3})
    assert list(stream) == [
        {"i": 1, "done": False},
        {"i": 2, "done": False},
        {"i": 3, "done": True},
    ]
    assert stream.final == {"i": 3, "done": True}
    assert client.run("test-me/count", {"n": 4}) == {"i": 4, "done": True}
    assert client.subscribe("test-me/count", {"n": 2}) == {"i": 2, "done": True}


def test_async_generator_streams(
    register: Register, client: SyncClient, aclient: AsyncClient
) -> None:
    @register("test-me/words")
    async def words(arguments: dict[str, Any], ctx: Context) -> AsyncIterator[dict[str, Any]]:
        text = ""
        for word in arguments["prompt"].split():
            await asyncio.sleep(0)
            text = f"{text} {word}".strip()
            print(f"word {word}")
            yield {"text": text}

    pieces = [
        cast("Json", item)["text"] for item in client.stream("test-me/words", {"prompt": "a b c"})
    ]
    assert pieces == ["a", "a b", "a b c"]

    async def collect() -> list[dict[str, Any]]:
        return [
            cast("Json", item) async for item in aclient.stream("test-me/words", {"prompt": "x y"})
        ]

    assert asyncio.run(collect()) == [{"text": "x"}, {"text": "x y"}]
    result, lines = logs_of(client, "test-me/words", {"prompt": "p q"})
    assert result == {"text": "p q"}
    assert ("STDOUT", "word p") in lines
    assert ("STDOUT", "word q") in lines


def test_realtime_function(register: Register, client: SyncClient) -> None:
    @register("test-me/rt", realtime=True)
    def scale(arguments: dict[str, Any]) -> dict[str, Any]:
        return {"value": arguments["value"] * 10}

    with client.realtime("test-me/rt") as connection:
        for value in (1, 2, 3):
            connection.send({"value": value})
            assert connection.recv(timeout=10) == {"value": value * 10}
    assert client.run("test-me/rt", {"value": 7}) == {"value": 70}


def test_async_realtime_function(register: Register, client: SyncClient) -> None:
    @register("test-me/rt-async", realtime=True)
    async def shout(arguments: dict[str, Any]) -> dict[str, Any]:
        return {"text": arguments["text"].upper()}

    with client.realtime("test-me/rt-async") as connection:
        connection.send({"text": "hi"})
        assert connection.recv(timeout=10) == {"text": "HI"}


def test_realtime_generator_is_refused(register: Register) -> None:
    def gen(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {}

    with pytest.raises(ValueError, match="realtime"):
        register("test-me/rt-gen", realtime=True)(gen)


def test_pydantic_input(register: Register, client: SyncClient) -> None:
    @register("test-me/typed")
    def typed(arguments: Prompt) -> Prompt:
        assert isinstance(arguments, Prompt)
        return Prompt(prompt=arguments.prompt.upper(), steps=arguments.steps + 1)

    assert client.run("test-me/typed", {"prompt": "go"}) == {"prompt": "GO", "steps": 3}
    with pytest.raises(ValidationError) as raised:
        client.run("test-me/typed", {"steps": "many"})
    error = raised.value
    assert error.status_code == 422
    assert error.errors_for("prompt")[0]["type"] == "missing"
    assert error.errors_for("steps")[0]["loc"] == ["body", "steps"]
    with pytest.raises(ValidationError) as queued:
        client.subscribe("test-me/typed", {"prompt": 5})
    assert queued.value.errors_for("prompt")


def test_ctx_as_keyword_and_positional(register: Register, client: SyncClient) -> None:
    @register("test-me/kw")
    def by_keyword(arguments: dict[str, Any], *, ctx: Context) -> dict[str, Any]:
        ctx.log("from ctx", "WARN")
        return {"endpoint": ctx.endpoint_id}

    @register("test-me/pos")
    def by_position(arguments: dict[str, Any], context: Context) -> dict[str, Any]:
        return {"endpoint": context.endpoint_id}

    @register("test-me/default")
    def with_default(arguments: dict[str, Any], scale: int = 3) -> dict[str, Any]:
        return {"scaled": arguments["x"] * scale}  # a defaulted 2nd parameter is not the ctx

    result, lines = logs_of(client, "test-me/kw", {})
    assert result == {"endpoint": "test-me/kw"}
    assert ("WARN", "from ctx") in lines
    assert client.run("test-me/pos", {}) == {"endpoint": "test-me/pos"}
    assert client.run("test-me/default", {"x": 2}) == {"scaled": 6}


def test_print_and_logging_reach_the_status_logs_live(
    register: Register, client: SyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    seen_first = threading.Event()
    logger = logging.getLogger("tests.user_apps")
    logger.setLevel(logging.INFO)

    @register("test-me/chatty")
    def chatty(arguments: dict[str, Any]) -> dict[str, Any]:
        print("first line")
        print("partial", end="")
        print(" line")
        # The test sees "first line" in a status update *before* the handler returns.
        live = seen_first.wait(10)
        logger.info("via logging")
        logger.warning("a warning")
        import sys

        print("to stderr", file=sys.stderr)
        return {"live": live}

    lines: list[tuple[str, str]] = []

    def on_update(status: Any) -> None:
        if isinstance(status, InProgress):
            for log in status.logs or []:
                lines.append((log["level"], log["message"]))
                if log["message"] == "first line":
                    # Meanwhile, output of other threads is not captured.
                    print("outside the handler")
                    seen_first.set()

    result = client.subscribe("test-me/chatty", {}, with_logs=True, on_queue_update=on_update)
    assert result == {"live": True}
    assert ("STDOUT", "first line") in lines
    assert ("STDOUT", "partial line") in lines
    assert ("INFO", "via logging") in lines
    assert ("WARN", "a warning") in lines
    assert ("STDERR", "to stderr") in lines
    assert all("outside" not in message for _, message in lines)
    assert "outside the handler" in capsys.readouterr().out
    # Capture is over: print goes where it went before.
    print("after")
    assert capsys.readouterr().out == "after\n"


def test_media_returns_become_files(register: Register, client: SyncClient, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    png = io.BytesIO()
    Image.new("RGB", (5, 4), (0, 255, 0)).save(png, "PNG")

    @register("test-me/media")
    def media(arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "images": [Image.new("RGB", (6, 3), (255, 0, 0))],
            "nested": {"raw": b"\x00\x01binary", "png": png.getvalue()},
            "audio": clip,
            "seed": 7,
        }

    result = client.run("test-me/media", {})
    (image,) = result["images"]
    assert (image["width"], image["height"], image["content_type"]) == (6, 3, "image/png")
    decoded = Image.open(io.BytesIO(download(image).content))
    assert decoded.size == (6, 3)
    assert decoded.getpixel((0, 0)) == (255, 0, 0)
    raw = result["nested"]["raw"]
    assert raw["content_type"] == "application/octet-stream"
    assert download(raw).content == b"\x00\x01binary"
    assert (result["nested"]["png"]["width"], result["nested"]["png"]["height"]) == (5, 4)
    assert download(result["nested"]["png"]).content == png.getvalue()
    audio = result["audio"]
    assert audio["file_name"] == "clip.wav"
    assert audio["content_type"] in {"audio/x-wav", "audio/wav"}  # by extension (mimetypes)
    response = download(audio)
    assert response.content == clip.read_bytes()
    assert response.headers["content-type"].startswith("audio/")
    assert result["seed"] == 7


def test_bare_returns_follow_fal_schemas(register: Register, client: SyncClient) -> None:
    @register("test-me/bare-image")
    def bare_image(arguments: dict[str, Any]) -> Image.Image:
        return Image.new("RGB", (8, 2))

    @register("test-me/bare-bytes")
    def bare_bytes(arguments: dict[str, Any]) -> bytes:
        return b"GIF89a-ish"

    @register("test-me/bare-text")
    def bare_text(arguments: dict[str, Any]) -> str:
        return "hello"

    @register("test-me/bare-int")
    def bare_int(arguments: dict[str, Any]) -> int:
        return 3

    (image,) = client.run("test-me/bare-image", {})["images"]
    assert (image["width"], image["height"]) == (8, 2)
    file = client.run("test-me/bare-bytes", {})["file"]
    assert file["content_type"] == "image/gif"
    assert download(file).content == b"GIF89a-ish"
    assert client.run("test-me/bare-text", {}) == {"output": "hello"}
    with pytest.raises(HTTPError) as raised:
        client.run("test-me/bare-int", {})
    assert raised.value.status_code == 500
    assert "return a dict" in str(raised.value)


def test_app_error_passes_through(register: Register, client: SyncClient) -> None:
    @register("test-me/refuse")
    def refuse(arguments: dict[str, Any]) -> dict[str, Any]:
        raise AppError(400, "no thanks", error_type="bad_request")

    with pytest.raises(HTTPError) as raised:
        client.subscribe("test-me/refuse", {})
    assert raised.value.status_code == 400
    assert "no thanks" in str(raised.value)


def test_reregistering_replaces_and_unregister_removes(
    register: Register, client: SyncClient
) -> None:
    @register("test-me/version")
    def first(arguments: dict[str, Any]) -> dict[str, Any]:
        return {"version": 1}

    assert client.run("test-me/version", {}) == {"version": 1}

    @register("test-me/version")
    def second(arguments: dict[str, Any]) -> dict[str, Any]:
        return {"version": 2}

    assert client.run("test-me/version", {}) == {"version": 2}
    falnb.local.unregister("test-me/version")
    with pytest.raises(HTTPError) as raised:
        client.run("test-me/version", {})
    assert raised.value.status_code == 404


def test_registering_after_a_server_started(
    register: Register, make_server: Callable[..., LocalServer]
) -> None:
    server = make_server()  # no registry=: the shared default registry
    assert server.registry is default_registry()
    with SyncClient(server.target) as sync:
        with pytest.raises(HTTPError):
            sync.run("test-me/late", {})

        @register("test-me/late")
        def late(arguments: dict[str, Any]) -> dict[str, Any]:
            return {"late": True}

        assert sync.run("test-me/late", {}) == {"late": True}


@pytest.mark.parametrize(
    "bad", ["nope", "me/has space", "me/x/stream", "me/x/realtime", "/me/x", "_x/y", ""]
)
def test_bad_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid endpoint id"):
        falnb.local.app(bad)
    assert bad not in default_registry()


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def my_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """examples/my_models.py imported afresh (it registers me/posterize), unregistered after."""
    monkeypatch.syspath_prepend(str(REPO))
    module = importlib.import_module("examples.my_models")
    yield importlib.reload(module)
    falnb.local.unregister("me/posterize")


def test_readme_example_runs_through_the_client(my_models: Any, client: SyncClient) -> None:
    source = Image.new("RGB", (20, 10), (100, 180, 30))
    result, lines = logs_of(client, "me/posterize", {"image_url": source, "levels": 2})
    (image,) = result["images"]
    assert (image["width"], image["height"]) == (20, 10)
    posterized = Image.open(io.BytesIO(download(image).content)).convert("RGB")
    assert posterized.getcolors() == [(200, (0, 255, 0))]  # 2 levels: 0 or 255 only
    assert ("STDOUT", "posterizing 20x10 to 2 levels") in lines
    with pytest.raises(ValidationError) as raised:
        client.run("me/posterize", {"image_url": "data:,", "levels": 1})
    assert raised.value.errors_for("levels")


def test_serve_app_list_includes_the_example(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("falnb")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "falnb.cli"]
    listed = run_captured(
        [*command, "serve", "--app", "examples.my_models", "--list"],
        cwd=REPO,
    ).stdout
    assert "me/posterize" in listed
    assert "Posterizes image_url" in listed
    assert "local/text-to-image" in listed
    missing = run_captured(
        [*command, "serve", "--app", "examples.nope", "--list"],
        cwd=REPO,
        check=False,
    )
    assert missing.returncode != 0
    assert "no module named 'examples.nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_readme_flow_on_the_embedded_server() -> None:
    """A fresh interpreter without a key: the embedded server serves apps registered later."""
    code = (
        "import falnb\n"
        "from PIL import Image\n"
        "falnb.run('local/echo', {})  # the embedded server is running now\n"
        "import examples.my_models\n"
        "image = Image.new('RGB', (12, 6), (10, 250, 128))\n"
        "result = falnb.subscribe('me/posterize', {'image_url': image, 'levels': 3})\n"
        "print(result['images'][0]['width'], result['images'][0]['height'])\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    done = run_captured(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=clean,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "6"]
    assert "embedded local server" in done.stderr
