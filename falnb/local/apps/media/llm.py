"""``local/llm``: a deterministic little text generator that streams like fal's any-llm.

Input: ``prompt`` (required), ``system_prompt``, ``model`` (echoed), ``seed``,
``max_tokens`` (1-2048), ``token_delay`` (seconds between tokens, 0-1, default 0.025, so
streaming is visible). Over ``/stream`` it yields ``{"output": text_so_far, "partial": true,
"error": null}`` per token, then the final ``{"output": text, "partial": false, ...}``; run
and queue return that final output. Same prompt and seed, same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from falnb.local.registry import Context

from ._inputs import Ignored, Inputs, Integer, Number, Prompt, Seed, Text, output_schema
from ._prompt import rng_for, words
from ._steps import check_cancelled

__all__ = ["INPUT", "OUTPUT", "compose_text", "llm", "llm_stream", "tokens"]

INPUT = Inputs(
    "LlmInput",
    Prompt(),
    Text("system_prompt", "Instructions that frame the answer"),
    Text("model", "The model name echoed in the output", default="local/llm"),
    Seed(),
    Integer("max_tokens", "At most this many tokens", default=512, low=1, high=2048),
    Number("token_delay", "Seconds between streamed tokens", default=0.025, low=0.0, high=1.0),
    Ignored("temperature"),
    Ignored("reasoning", type="boolean"),
    Ignored("priority", type="string"),
)
OUTPUT = output_schema(
    "LlmOutput",
    output={"type": "string"},
    partial={"type": "boolean"},
    error={"type": "string", "nullable": True},
    seed={"type": "integer"},
    model={"type": "string"},
)
_STOP = frozenset({
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "about",
    "from", "by", "as", "is", "are", "was", "were", "be", "been", "what", "how", "why", "when",
    "where", "who", "which", "can", "could", "would", "should", "do", "does", "did", "i", "you",
    "me", "my", "your", "it", "its", "this", "that", "these", "those", "please", "tell",
    "explain", "write", "give", "some", "any", "us", "our", "we", "describe", "say",
})  # fmt: skip
_OPENERS = (
    "Here is a short take on {topic}.",
    "Good question about {topic}.",
    "Let's think about {topic} for a moment.",
    "In short, {topic} is worth a closer look.",
)
_BODY = (
    "At its heart, {topic} is about how {a} and {b} fit together.",
    "A useful way to picture {a} is as a layer on top of {b}.",
    "Most of the interesting detail in {topic} comes from {a}.",
    "People often start with {a}, then learn to give {b} the same attention.",
    "If you change {a}, {b} tends to follow, which is why the two are studied together.",
    "The simplest version of {topic} fits in a sentence; the full story takes longer.",
    "A small experiment with {a} usually teaches more than a long description of it.",
)
_CLOSERS = (
    "I hope that gives you a good starting point.",
    "That is the gist; ask again for more depth on any part.",
    "(This answer comes from falnb's local model, a deterministic stand-in for an LLM.)",
)


def compose_text(prompt: str, seed: int, system_prompt: str = "") -> str:
    """A few sentences about the prompt's key words, fixed by prompt, system prompt and seed."""
    rng = rng_for(seed, system_prompt + "\n" + prompt, salt=20)
    content = [w for w in words(prompt) if w not in _STOP and len(w) > 2]
    content = list(dict.fromkeys(content)) or ["your question"]
    topic = " ".join(content[:3])
    a = content[int(rng.integers(len(content)))]
    b = content[int(rng.integers(len(content)))] if len(content) > 1 else "the details"
    if a == b:
        b = "the details"

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))].format(topic=topic, a=a, b=b)

    body = rng.permutation(len(_BODY))[: int(rng.integers(2, 5))]
    sentences = [pick(_OPENERS), *(_BODY[i].format(topic=topic, a=a, b=b) for i in body)]
    sentences.append(pick(_CLOSERS))
    text = " ".join(sentences)
    return text[0].upper() + text[1:]


def tokens(text: str) -> list[str]:
    """Word-sized pieces that concatenate back to ``text`` exactly."""
    return re.findall(r"\s*\S+", text)


def _options(arguments: dict[str, Any], ctx: Context) -> tuple[str, int, str, int, float, str]:
    v = INPUT.read(arguments, ctx)
    return v["prompt"], v["seed"], v["system_prompt"], v["max_tokens"], v["token_delay"], v["model"]


def _final(text: str, seed: int, model: str) -> dict[str, Any]:
    return {"output": text, "partial": False, "error": None, "seed": seed, "model": model}


def llm_stream(arguments: dict[str, Any], ctx: Context) -> Iterator[dict[str, Any]]:
    """Stream handler: one partial output per token, then the final output."""
    prompt, seed, system_prompt, max_tokens, delay, model = _options(arguments, ctx)
    pieces = tokens(compose_text(prompt, seed, system_prompt))[:max_tokens]
    text = ""
    for piece in pieces:
        check_cancelled(ctx)
        text += piece
        yield {"output": text, "partial": True, "error": None}
        if delay:
            # Waiting on the cancel event (not sleeping) lets a cancel cut the pause short.
            ctx.cancelled.wait(delay)
    check_cancelled(ctx)
    yield _final(text, seed, model)


def llm(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Run/queue handler: the final output, without the per-token pauses."""
    prompt, seed, system_prompt, max_tokens, _, model = _options(arguments, ctx)
    pieces = tokens(compose_text(prompt, seed, system_prompt))[:max_tokens]
    ctx.bill(len(pieces))  # per output token
    return _final("".join(pieces), seed, model)
