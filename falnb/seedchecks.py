"""Does the seed hold? Run the same arguments and seed twice (and once with another seed) and
say whether the endpoint is ``exact``, ``near`` or ``ignores seed``.

::

    check = falnb.seedcheck("local/text-to-image", {"prompt": "a fox"}, seed=7)
    check.verdict    # "exact"

``exact``: the two same-seed outputs are identical, another seed changes them. ``near``: the
same-seed outputs differ by a perceptual distance under ``threshold`` (mean absolute
difference of 64x64 greyscale thumbnails, 0 to 1), less than another seed's. ``ignores seed``:
the same seed does not reproduce the output, or another seed gives the very same one. The
three runs are real requests (each one sent, none replayed from another); the verdict is
written to the lock (``seedcheck:<endpoint>``), replayed from there by a re-run with the same
arguments and seed (record once/none), and shown as a badge under the endpoint's sweep grids
and single results.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from falnb._display import Bundle, Displayed
from falnb.repro.modes import resolve_mode
from falnb.repro.recorder import seedcheck_key as lock_key
from falnb.sweeps import Failed, Sweep, SweepJob

if TYPE_CHECKING:
    from falnb._settings import TargetName
    from falnb.repro.lockfile import Entry
    from falnb.result import Result
    from falnb.session import Session

__all__ = [
    "NEAR",
    "SeedCheck",
    "Verdict",
    "distance",
    "from_entry",
    "lock_key",
    "recorded",
    "seedcheck",
]

Verdict = Literal["exact", "near", "ignores seed"]
#: Same-seed outputs closer than this (0 to 1) are "near".
NEAR = 0.02
_THUMB = 64
_BADGE_COLOURS = {"exact": "#1e7e34", "near": "#9a6700", "ignores seed": "#b00020"}


@dataclass(frozen=True)
class SeedCheck(Displayed):
    """The verdict on one endpoint, with the distances that led to it."""

    endpoint: str
    arguments: dict[str, Any]
    seed: int
    verdict: Verdict
    same_seed: float
    """Distance between the two same-seed outputs (0: identical)."""
    other_seed: float
    """Distance between a same-seed output and the other seed's."""

    def badge(self) -> str:
        """A small sanitizer-safe HTML badge (``seed: exact``)."""
        colour = _BADGE_COLOURS[self.verdict]
        return (
            f'<span class="falnb-seedcheck" title="falnb seedcheck: same seed twice, distance '
            f'{self.same_seed:.3f}; another seed, {self.other_seed:.3f}" '
            f'style="font-size:11px;padding:1px 6px;border-radius:8px;color:#fff;'
            f'background:{colour}"><b>seed: {html.escape(self.verdict)}</b></span>'
        )

    def line(self) -> str:
        said = {"exact": "the seed holds exactly", "near": "the seed holds nearly"}
        verdict = said.get(self.verdict, "ignores the seed")
        return (
            f"{self.endpoint}: {verdict} (same seed twice: distance "
            f"{self.same_seed:.3f}; seed {self.seed} vs {self.seed + 1}: {self.other_seed:.3f})"
        )

    def __repr__(self) -> str:
        return f"<SeedCheck {self.line()}>"

    def _bundle(self) -> Bundle:
        data = {
            "text/plain": self.line(),
            "text/html": f"<div>{self.badge()} {html.escape(self.line())}</div>",
        }
        return data, {"falnb": {"seedcheck": self.as_dict()}}

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "seed": self.seed,
            "same_seed": round(self.same_seed, 4),
            "other_seed": round(self.other_seed, 4),
        }


def _first_image(result: Result) -> bytes | None:
    for file in result.files:
        if file.kind == "image":
            return file.data
    return None


def _grey(data: bytes) -> list[int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return list(image.convert("L").resize((_THUMB, _THUMB)).tobytes())


def _comparable(result: Result) -> str:
    """The output without what differs per request or names the seed: file URLs become their
    bytes' length and digest, ``seed`` and ``timings`` are left out."""
    import hashlib

    digests = {f.url: f"{len(f.data)}:{hashlib.sha256(f.data).hexdigest()}" for f in result.files}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: digests.get(v, v) if k == "url" else strip(v)
                for k, v in value.items()
                if k not in ("seed", "timings")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(result.json), sort_keys=True, default=str)


def distance(a: Result, b: Result) -> float:
    """How far apart two outputs are, 0 (identical) to 1: images perceptually, anything else
    all or nothing."""
    if _comparable(a) == _comparable(b):
        return 0.0
    first, second = _first_image(a), _first_image(b)
    if first is None or second is None:
        return 1.0
    pixels = zip(_grey(first), _grey(second), strict=True)
    return sum(abs(x - y) for x, y in pixels) / (255 * _THUMB * _THUMB)


def judge(same_seed: float, other_seed: float, threshold: float = NEAR) -> Verdict:
    if same_seed == 0 and other_seed == 0:
        return "ignores seed"  # the same output whatever the seed
    if same_seed == 0:
        return "exact"
    if same_seed <= threshold and other_seed > same_seed:
        return "near"
    return "ignores seed"


def seedcheck(
    endpoint: str,
    arguments: dict[str, Any] | None = None,
    *,
    seed: int = 1234,
    threshold: float = NEAR,
    target: TargetName | None = None,
    session: Session | None = None,
) -> SeedCheck:
    """Run ``endpoint`` three times (seed, seed, seed + 1) and judge whether the seed holds;
    the verdict is written to the lock. Raises the first failed run's error."""
    from falnb.session import default_session

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, not {seed!r}")
    session = session or default_session()
    endpoint = endpoint.strip("/")
    base = {k: v for k, v in (arguments or {}).items() if k != "seed"}
    earlier = recorded(session, endpoint)
    if (
        earlier is not None
        and earlier.arguments == base
        and earlier.seed == seed
        and resolve_mode(None, session.config.record) in ("once", "none")
    ):
        # A re-run replays the pinned verdict, as a %%fal cell replays its result: three
        # paid runs are not repeated, and record=none (CI, `falnb lock verify`) needs no network.
        same, different = earlier.same_seed, earlier.other_seed
        return replace(earlier, verdict=judge(same, different, threshold))
    jobs = [SweepJob(endpoint, {**base, "seed": s}) for s in (seed, seed, seed + 1)]
    # record="off": the second run must be a real request, not a replay of the first.
    results = Sweep(session, jobs, concurrency=3, record="off", target=target).run()
    for outcome in results:
        if isinstance(outcome, Failed):
            raise outcome.error
    first, again, other = (r for r in results if not isinstance(r, Failed))
    same, different = distance(first, again), distance(first, other)
    check = SeedCheck(endpoint, base, seed, judge(same, different, threshold), same, different)
    _record(session, check)
    return check


def _record(session: Session, check: SeedCheck) -> None:
    from falnb._version import __version__
    from falnb.repro.lockfile import Entry

    entry = Entry(
        endpoint=check.endpoint,
        arguments=check.arguments,
        status="completed",
        seed=check.seed,
        result={"seedcheck": check.as_dict()},
        falnb_version=__version__,
        extra={"kind": "seedcheck"},
    )
    session.recorder.lock.put(lock_key(check.endpoint), entry)


def recorded(session: Session, endpoint: str) -> SeedCheck | None:
    """The verdict the lock holds for ``endpoint`` (None: never checked)."""
    try:
        return from_entry(session.recorder.lock.get(lock_key(endpoint)))
    except OSError:
        return None


def from_entry(entry: Entry | None) -> SeedCheck | None:
    """The verdict in a ``seedcheck:<endpoint>`` lock entry (None: none, or not readable)."""
    found = (
        entry.result.get("seedcheck")
        if entry is not None and isinstance(entry.result, dict)
        else None
    )
    if entry is None or not isinstance(found, dict) or found.get("verdict") not in _BADGE_COLOURS:
        return None
    return SeedCheck(
        entry.endpoint,
        dict(entry.arguments),
        int(found.get("seed", entry.seed or 0)),
        found["verdict"],
        float(found.get("same_seed", 0.0)),
        float(found.get("other_seed", 0.0)),
    )
