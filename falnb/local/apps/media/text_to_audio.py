"""``local/text-to-audio``: a short generated piece of music in fal's ``{audio: File}`` schema.

Input: ``prompt`` (required), ``seed``, ``duration`` (seconds, 1-30, default 5).
Output: ``{audio: File (audio/wav, 16-bit PCM mono 32 kHz), seed, timings, prompt}``.
The prompt picks mode and tempo (calm, dreamy, stormy, happy, dark, ...), the seed the key,
progression and melody; rain, ocean and wind words add textures. Chords are logged as steps.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np

from falnb.local.registry import Context

from ._inputs import Flag, Ignored, Inputs, Number, Prompt, Seed, media_output
from ._media import deliver
from ._noise import Array
from ._prompt import rng_for, words
from ._steps import Timer, steps

__all__ = ["INPUT", "OUTPUT", "SAMPLE_RATE", "encode_wav", "text_to_audio", "text_to_audio_stream"]

#: A binary stream's chunk size: the WAV goes out as a speech endpoint's audio would.
STREAM_CHUNK = 16 * 1024

SAMPLE_RATE = 32_000
INPUT = Inputs(
    "TextToAudioInput",
    Prompt(),
    Seed(),
    Number("duration", "Seconds of audio", default=5.0, low=1.0, high=30.0, numeric_text=True),
    Flag("sync_mode", "Return the audio as a data URI instead of a CDN URL"),
    Ignored("negative_prompt", type="string"),
)
OUTPUT = media_output("TextToAudioOutput", "audio")

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions as scale degrees (0-based): I-V-vi-IV, vi-IV-I-V, I-vi-IV-V, i-VI-III-VII ...
_PROGRESSIONS = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (0, 6, 5, 4))
_SAD = {"dark", "sad", "night", "stormy", "storm", "melancholy", "gloomy", "rain", "rainy",
        "mystic", "moody", "cold", "winter"}  # fmt: skip
_SLOW = {"calm", "dreamy", "serene", "peaceful", "ambient", "slow", "sleep", "meditation",
         "ocean", "night"}  # fmt: skip
_FAST = {"happy", "upbeat", "energetic", "dance", "fast", "bright", "sunny", "party"}


def encode_wav(samples: Array, rate: int = SAMPLE_RATE) -> bytes:
    """Mono float samples in ``-1..1`` as 16-bit PCM WAV bytes."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(pcm.tobytes())
    return out.getvalue()


def _tone(freq: float, length: int, harmonics: tuple[float, ...]) -> Array:
    t = np.arange(length, dtype=np.float64) / SAMPLE_RATE
    wave_ = sum(
        (amp * np.sin(2 * np.pi * freq * (k + 1) * t) for k, amp in enumerate(harmonics)),
        start=np.zeros(length),
    )
    return np.asarray(wave_, dtype=np.float32)


def _envelope(length: int, attack: float, release: float) -> Array:
    n = np.arange(length, dtype=np.float32)
    rise = np.clip(n / max(1.0, attack * SAMPLE_RATE), 0, 1)
    fall = np.clip((length - n) / max(1.0, release * SAMPLE_RATE), 0, 1)
    envelope: Array = (rise * fall).astype(np.float32)
    return envelope


def _pluck(length: int, decay: float) -> Array:
    n = np.arange(length, dtype=np.float32) / SAMPLE_RATE
    attack = np.clip(n / 0.005, 0, 1)
    return (attack * np.exp(-n / decay)).astype(np.float32)


def _midi(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def _add(track: Array, start: int, sound: Array) -> None:
    end = min(len(track), start + len(sound))
    if end > start:
        track[start:end] += sound[: end - start]


def _noise_bed(rng: np.random.Generator, length: int, smooth: int) -> Array:
    """Low-passed noise (a moving average) for rain, surf and wind."""
    noise = rng.standard_normal(length + smooth).astype(np.float32)
    kernel = np.ones(smooth, dtype=np.float32) / smooth
    return np.convolve(noise, kernel, mode="valid")[:length].astype(np.float32)


def compose(ctx: Context, prompt: str, seed: int, duration: float) -> Array:
    """The piece as float samples, exactly ``round(duration * SAMPLE_RATE)`` long."""
    tokens = set(words(prompt))
    rng = rng_for(seed, prompt, salt=10)
    length = round(duration * SAMPLE_RATE)
    scale = (
        _MINOR
        if tokens & _SAD
        else _MAJOR
        if tokens & (_FAST | {"calm"})
        else (_MINOR if rng.random() < 0.4 else _MAJOR)
    )
    bpm = (
        rng.uniform(58, 72)
        if tokens & _SLOW
        else rng.uniform(112, 128)
        if tokens & _FAST
        else (rng.uniform(76, 100))
    )
    beat = 60.0 / bpm
    root = 48 + int(rng.integers(0, 12))
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    chord_len = int(4 * beat * SAMPLE_RATE)
    count = max(1, -(-length // chord_len))

    def degree(d: int) -> int:
        return root + scale[d % 7] + 12 * (d // 7)

    pad = np.zeros(length, dtype=np.float32)
    lead = np.zeros(length, dtype=np.float32)
    bass = np.zeros(length, dtype=np.float32)
    for index in steps(ctx, count):
        start = (index - 1) * chord_len
        d = progression[(index - 1) % len(progression)]
        span = chord_len + int(0.6 * SAMPLE_RATE)  # chords ring into the next one
        env = _envelope(span, attack=0.4, release=0.9)
        for offset in (0, 2, 4):
            _add(pad, start, _tone(_midi(degree(d + offset) + 12), span, (0.5, 0.15, 0.06)) * env)
        _add(bass, start, _tone(_midi(degree(d) - 12), span, (0.7, 0.2)) * env)
        # An arpeggio over the chord, eighth notes, with the seed choosing the pattern.
        eighth = int(beat * SAMPLE_RATE / 2)
        pattern = rng.choice([0, 2, 4, 7, 9], size=8)
        for step_index, tone_degree in enumerate(pattern):
            if rng.random() < 0.2:
                continue  # rests give it a pulse
            note = degree(d + int(tone_degree)) + 24
            sound = _tone(_midi(note), eighth * 3, (0.35, 0.08, 0.03)) * _pluck(eighth * 3, 0.25)
            _add(lead, start + step_index * eighth, sound)

    mix = pad * 0.5 + bass * 0.35 + lead * 0.4
    if tokens & {"rain", "rainy", "storm", "stormy"}:
        mix += _noise_bed(rng, length, 6) * 0.08
    if tokens & {"ocean", "sea", "waves", "wave", "beach"}:
        swell = 0.5 + 0.5 * np.sin(2 * np.pi * np.arange(length) / (SAMPLE_RATE * 6.0))
        mix += _noise_bed(rng, length, 40) * (0.25 * swell).astype(np.float32)
    if tokens & {"wind", "windy"}:
        mix += _noise_bed(rng, length, 200) * 0.6
    # A simple echo gives the room some air.
    delay = int(beat * 0.75 * SAMPLE_RATE)
    echo = np.zeros_like(mix)
    echo[delay:] = mix[:-delay] * 0.3
    mix += echo
    fade = _envelope(length, attack=0.05, release=0.4)
    mix *= fade
    peak = float(np.max(np.abs(mix))) or 1.0
    normalised: Array = (mix * (0.89 / peak)).astype(np.float32)
    return normalised


def text_to_audio_stream(arguments: dict[str, Any], ctx: Context) -> Iterator[bytes]:
    """Stream handler for ``local/text-to-audio``: the WAV as a binary stream of chunks (as
    fal's text-to-speech endpoints stream audio), header first."""
    values = INPUT.read(arguments, ctx)
    prompt, seed, duration = values["prompt"], values["seed"], values["duration"]
    data = encode_wav(compose(ctx, prompt, seed, duration))
    for start in range(0, len(data), STREAM_CHUNK):
        if ctx.cancelled.is_set():
            return
        yield data[start : start + STREAM_CHUNK]


def text_to_audio(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Handler for ``local/text-to-audio``."""
    values = INPUT.read(arguments, ctx)
    prompt, seed, duration = values["prompt"], values["seed"], values["duration"]
    sync_mode = values["sync_mode"]

    timer = Timer()
    samples = compose(ctx, prompt, seed, duration)
    data = encode_wav(samples)
    ctx.bill(len(samples) / SAMPLE_RATE)  # per second of audio made
    audio = deliver(ctx, data, "audio/wav", "output.wav", sync_mode=sync_mode)
    return {"audio": audio, "seed": seed, "timings": timer.timings(), "prompt": prompt}
