"""falnb's built-in local apps (owner ``local``): procedural stand-ins for fal's media models.

Each bills in its fal counterpart's unit (``ctx.bill``) and lists an illustrative price (the
local server charges nothing; the prices are there so cost can be shown and tested offline).
Deterministic per seed, shaped like the fal endpoints they stand in for, fast on a CPU:

* ``local/text-to-image``: flux-style ``{images, timings, seed, has_nsfw_concepts, prompt}``;
* ``local/image-to-image``: restyles ``image_url``; also served over realtime (msgpack);
* ``local/text-to-video``: an H.264 mp4 as ``{video: File}``;
* ``local/text-to-audio``: a WAV as ``{audio: File}``;
* ``local/llm``: text streamed token by token over ``/stream``.
"""

from __future__ import annotations

from falnb.local.registry import Endpoint

from . import image_to_image, llm, text_to_audio, text_to_image, text_to_video

__all__ = ["ENDPOINTS"]

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "local/text-to-image",
        handler=text_to_image.text_to_image,
        input_schema=text_to_image.INPUT.schema(),
        output_schema=text_to_image.OUTPUT,
        description="Procedural text-to-image (fal's flux schema): prompt words steer palette, "
        "composition and mood.",
        unit="image",
        unit_price=0.025,
    ),
    Endpoint(
        "local/image-to-image",
        handler=image_to_image.image_to_image,
        realtime=image_to_image.image_to_image_realtime,
        input_schema=image_to_image.INPUT.schema(),
        output_schema=image_to_image.OUTPUT,
        description="Restyles image_url after the prompt; realtime over WebSocket + msgpack.",
        unit="megapixel",
        unit_price=0.03,
    ),
    Endpoint(
        "local/text-to-video",
        handler=text_to_video.text_to_video,
        input_schema=text_to_video.INPUT.schema(),
        output_schema=text_to_video.OUTPUT,
        description="An animated scene as an H.264 mp4 ({video: File}).",
        unit="second",
        unit_price=0.05,
    ),
    Endpoint(
        "local/text-to-audio",
        handler=text_to_audio.text_to_audio,
        stream=text_to_audio.text_to_audio_stream,
        input_schema=text_to_audio.INPUT.schema(),
        output_schema=text_to_audio.OUTPUT,
        description="A short piece of generated music as WAV ({audio: File}); /stream sends "
        "it as a binary stream of audio/wav chunks.",
        unit="second",
        unit_price=0.002,
    ),
    Endpoint(
        "local/llm",
        handler=llm.llm,
        stream=llm.llm_stream,
        input_schema=llm.INPUT.schema(),
        output_schema=llm.OUTPUT,
        description="Deterministic text, streamed token by token over /stream.",
        unit="token",
        unit_price=0.000002,
    ),
]
