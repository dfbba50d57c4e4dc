"""local/llm: streamed partials that build up to the final output, deterministic per seed."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from falnb.local.apperror import AppError
from falnb.local.apps.media.llm import llm, llm_stream


def test_stream_pieces_build_the_final_output(harness: Any) -> None:
    ctx = harness.context("local/llm")
    events = list(llm_stream({"prompt": "Why is the sky blue?", "seed": 3, "token_delay": 0}, ctx))
    *partials, final = events
    assert len(partials) > 5
    assert all(e["partial"] is True and e["error"] is None for e in partials)
    texts = [e["output"] for e in partials]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert final["partial"] is False
    assert final["output"] == texts[-1]
    assert "sky" in final["output"]
    assert llm({"prompt": "Why is the sky blue?", "seed": 3}, ctx)["output"] == final["output"]


def test_deterministic_per_seed(harness: Any) -> None:
    ctx = harness.context()
    outputs = {
        seed: llm({"prompt": "explain rainbows", "seed": seed}, ctx)["output"] for seed in range(6)
    }
    assert llm({"prompt": "explain rainbows", "seed": 0}, ctx)["output"] == outputs[0]
    assert len(set(outputs.values())) > 1


def test_max_tokens_limits_the_stream(harness: Any) -> None:
    args = {"prompt": "tell me about volcanoes", "max_tokens": 4, "token_delay": 0}
    events = list(llm_stream(args, harness.context()))
    assert len(events) == 5
    assert len(events[-1]["output"].split()) == 4


def test_token_delay_paces_the_stream_and_cancel_stops_it(harness: Any) -> None:
    ctx = harness.context()
    stream = llm_stream({"prompt": "tell me about tides", "token_delay": 0.05}, ctx)
    started = time.monotonic()
    next(stream)
    next(stream)  # the second token waits out the first one's delay
    assert time.monotonic() - started >= 0.04
    threading.Timer(0.01, ctx.cancelled.set).start()
    with pytest.raises(AppError) as caught:
        list(stream)
    assert caught.value.status_code == 499


def test_missing_prompt_is_a_422(harness: Any) -> None:
    with pytest.raises(AppError) as caught:
        next(llm_stream({"seed": 1}, harness.context()))
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == ["body", "prompt"]
