"""Does the seed hold? seedcheck on a deterministic, a nearly deterministic and a
seed-ignoring local app: three real runs each, a verdict recorded in the lock, a badge."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import falnb
from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.seedchecks import judge, lock_key, recorded
from falnb.session import Session
from falnb.sweeps import Sweep, plan

SMALL = {"prompt": "a fox", "image_size": {"width": 48, "height": 48}, "num_inference_steps": 2}


@pytest.fixture
def session(server: LocalServer, tmp_path: Path) -> Iterator[Session]:
    recorder = Recorder(LockFile(tmp_path / "falnb.lock"), MediaStore(tmp_path / "media"))
    with SyncClient(server.target) as client:
        yield Session(client, recorder=recorder)


@pytest.fixture
def apps() -> Iterator[None]:
    runs = itertools.count()

    @falnb.local.app("test/noisy")
    def noisy(arguments: dict) -> Image.Image:  # type: ignore[type-arg]
        """Ignores the seed: a different grey every run, at least 100 levels from the others
        (random colours were sometimes close enough to read as "near")."""
        shade = next(runs) * 100 % 300
        return Image.new("RGB", (32, 32), (shade, shade, shade))

    @falnb.local.app("test/grainy")
    def grainy(arguments: dict) -> Image.Image:  # type: ignore[type-arg]
        """Seeded, plus one random pixel: the same seed is near, not exact."""
        rng = random.Random(arguments["seed"])
        image = Image.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3)))
        image.putpixel((random.randrange(32), random.randrange(32)), (0, 0, 0))
        return image

    yield
    falnb.local.unregister("test/noisy")
    falnb.local.unregister("test/grainy")


def test_a_deterministic_endpoint_is_exact_and_the_verdict_is_in_the_lock(
    server: LocalServer, session: Session
) -> None:
    check = falnb.seedcheck("local/text-to-image", SMALL, seed=7, session=session)
    assert check.verdict == "exact"
    assert check.same_seed == 0
    assert check.other_seed > 0
    assert len(server.journal.accepted_submissions("local/text-to-image")) == 3
    entry = session.recorder.lock.get(lock_key("local/text-to-image"))
    assert entry is not None
    assert entry.result["seedcheck"]["verdict"] == "exact"
    again = recorded(session, "local/text-to-image")
    assert again is not None
    assert (again.verdict, again.seed, again.same_seed) == ("exact", 7, 0.0)
    assert "seed: exact" in check._repr_mimebundle_()[0]["text/html"]
    # The endpoint's sweep grids carry the badge from the lock.
    results = Sweep(session, plan("local/text-to-image", SMALL, {"seed": [1, 2]})).run()
    assert "seed: exact" in results._repr_mimebundle_()[0]["text/html"]


def test_a_seed_ignoring_and_a_nearly_exact_endpoint(
    server: LocalServer, session: Session, apps: None
) -> None:
    assert falnb.seedcheck("test/noisy", {}, session=session).verdict == "ignores seed"
    near = falnb.seedcheck("test/grainy", {}, session=session)
    assert near.verdict == "near", near
    assert 0 < near.same_seed < near.other_seed
    # local/echo gives back the same output whatever the seed (once the seed is left out).
    assert falnb.seedcheck("local/echo", {"x": 1}, session=session).verdict == "ignores seed"
    assert recorded(session, "test/noisy") is not None


def test_the_verdicts() -> None:
    assert judge(0.0, 0.4) == "exact"
    assert judge(0.0, 0.0) == "ignores seed"
    assert judge(0.01, 0.4) == "near"
    assert judge(0.3, 0.4) == "ignores seed"


def test_a_recorded_verdict_replays_until_a_refresh(
    server: LocalServer, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = falnb.seedcheck("local/text-to-image", SMALL, seed=7, session=session)
    runs = server.journal.accepted_submissions
    assert len(runs("local/text-to-image")) == 3
    # Run again (a re-run of the cell, or CI with record=none): the lock's verdict, no request.
    again = falnb.seedcheck("local/text-to-image", SMALL, seed=7, session=session)
    assert again.line() == first.line()
    monkeypatch.setenv("FALNB_RECORD", "none")
    assert falnb.seedcheck("local/text-to-image", SMALL, seed=7, session=session).line() == (
        first.line()
    )
    monkeypatch.delenv("FALNB_RECORD")
    assert len(runs("local/text-to-image")) == 3
    # Other arguments or another seed are another experiment; refresh runs this one again.
    falnb.seedcheck("local/text-to-image", SMALL, seed=8, session=session)
    assert len(runs("local/text-to-image")) == 6
    session.config.record = "refresh"
    assert falnb.seedcheck("local/text-to-image", SMALL, seed=8, session=session).verdict == "exact"
    assert len(runs("local/text-to-image")) == 9
