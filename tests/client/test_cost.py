"""What a call costs, over the local server: the units its app billed, the unit price from
the pricing document, cost = units x price on the Result and under its output, the units in
the lock, a replay costing nothing, prices asked for once, and the session's usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.pricing import Prices
from falnb.render import mimebundle
from falnb.repro import Recorder
from falnb.session import Session

SMALL = {"width": 32, "height": 24}
TWO_IMAGES = {"prompt": "a red sun", "image_size": SMALL, "num_images": 2, "num_inference_steps": 1}


def priced_session(client: SyncClient, tmp_path: Path) -> Session:
    """A session recording to a notebook in ``tmp_path``, with the server's prices."""
    session = Session(client, recorder=Recorder.default(tmp_path / "n.ipynb"))
    session.prices = Prices(tmp_path / "prices.json")
    return session


def _pricing_asks(server: LocalServer) -> int:
    return len(server.journal.entries(method="GET", path_contains="/v1/models/pricing"))


def test_a_run_costs_its_units_times_the_unit_price_and_shows_it(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    result = priced_session(client, tmp_path).run("local/text-to-image", TWO_IMAGES, seed=1)
    assert result.units == 2.0
    assert result.price is not None
    assert (result.price.unit, result.price.unit_price) == ("image", 0.025)
    assert result.cost == pytest.approx(0.05)
    assert not result.replayed
    data, _ = mimebundle(result)
    assert data["text/plain"].endswith("2 images \u00d7 $0.025 = $0.05")
    assert "2 images \u00d7 $0.025 = $0.05" in data["text/html"]
    # The units (and the price then) are recorded with the request.
    [entry] = Recorder.default(tmp_path / "n.ipynb").lock.entries().values()
    assert entry.request_id == result.request_id
    assert entry.extra["billing"] == {
        "units": 2.0,
        "unit": "image",
        "unit_price": 0.025,
        "currency": "USD",
    }


def test_a_replay_costs_nothing_and_says_what_the_recorded_run_cost(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    sent = priced_session(client, tmp_path).run("local/text-to-image", TWO_IMAGES, seed=1)
    server.journal.clear()
    again = priced_session(client, tmp_path)  # a new kernel on the same notebook
    replayed = again.run("local/text-to-image", TWO_IMAGES, seed=1)
    assert replayed.replayed
    assert replayed.cost == 0.0
    assert replayed.units == 2.0  # what the recorded run billed
    # The saved output is the recorded run's, cost line included: re-runs diff clean.
    data, _ = mimebundle(replayed)
    assert data["text/plain"].endswith("2 images \u00d7 $0.025 = $0.05")
    assert data == mimebundle(sent)[0]
    assert server.journal.accepted_submissions() == []
    assert _pricing_asks(server) == 0  # a replay asks nothing of the network


def test_a_price_is_asked_once_per_session_and_kept_on_disk_with_an_age(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    session = priced_session(client, tmp_path)
    session.config.record = "off"
    for n in range(3):
        assert session.run("local/echo", {"n": n}).cost == pytest.approx(0.01)
    assert _pricing_asks(server) == 1
    # A new session reads the disk cache while it is fresh ...
    fresh = priced_session(client, tmp_path)
    fresh.config.record = "off"
    assert fresh.run("local/echo", {"n": 9}).cost == pytest.approx(0.01)
    assert _pricing_asks(server) == 1
    # ... and asks again once it is older than its age.
    stale = priced_session(client, tmp_path)
    stale.config.record = "off"
    stale.prices = Prices(tmp_path / "prices.json", max_age=0.0)
    assert stale.run("local/echo", {"n": 10}).cost == pytest.approx(0.01)
    assert _pricing_asks(server) == 2


def test_without_a_price_the_units_alone_are_shown(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    # local/stream-text is in no pricing document: its run bills one unit of unknown price.
    result = priced_session(client, tmp_path).run(
        "local/stream-text", {"prompt": "a b", "delay": 0}
    )
    assert result.units == 1.0
    assert result.price is None
    assert result.cost is None
    assert mimebundle(result)[0]["text/plain"].endswith("\n1 unit")


def test_usage_sums_this_sessions_requests_per_endpoint_with_replays_free(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    priced_session(client, tmp_path).run("local/text-to-image", TWO_IMAGES, seed=1)  # recorded
    session = priced_session(client, tmp_path)
    session.run("local/text-to-image", TWO_IMAGES, seed=1)  # replayed: free
    session.run("local/text-to-image", {**TWO_IMAGES, "num_images": 1}, seed=2)
    session.run("local/echo", {"a": 1})
    session.run("local/echo", {"a": 2})
    rows: list[dict[str, Any]] = session.usage.rows()
    by_endpoint = {row["endpoint"]: row for row in rows}
    image, echo, total = (by_endpoint[k] for k in ("local/text-to-image", "local/echo", "total"))
    assert (image["requests"], image["replayed"], image["units"]) == (1, 1, 1.0)
    assert image["cost"] == pytest.approx(0.025)
    assert (echo["requests"], echo["replayed"], echo["units"]) == (2, 0, 2.0)
    assert echo["cost"] == pytest.approx(0.02)
    assert (total["requests"], total["replayed"]) == (3, 1)
    assert total["cost"] == pytest.approx(0.045)
    assert session.usage.spent() == pytest.approx(0.045)
    table = session.usage.table()
    assert "local/text-to-image" in table
    assert "$0.045" in table.splitlines()[-1]
    assert len(server.journal.accepted_submissions()) == 4  # the replay sent nothing


def test_the_pricing_document_is_asked_of_fals_platform_api_or_the_servers_rest_root() -> None:
    from falnb._settings import Target
    from falnb.pricing import pricing_url

    assert pricing_url(Target.fal("k")) == "https://api.fal.ai/v1/models/pricing"
    mirror = Target.fal("k", rest_url="http://127.0.0.1:9/_rest")
    assert pricing_url(mirror) == "http://127.0.0.1:9/_rest/v1/models/pricing"
    local = Target.local("http://127.0.0.1:9", "k")
    assert pricing_url(local) == "http://127.0.0.1:9/_rest/v1/models/pricing"


def test_the_budget_refuses_a_call_that_would_pass_it_and_sends_nothing(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    from falnb.pricing import BudgetExceededError

    session = priced_session(client, tmp_path)
    session.config.budget = 0.06
    session.run("local/text-to-image", TWO_IMAGES, seed=1)  # $0.05: fits
    server.journal.clear()
    with pytest.raises(BudgetExceededError) as refused:
        session.run("local/text-to-image", TWO_IMAGES, seed=2)  # another $0.05: does not
    assert str(refused.value) == (
        "local/text-to-image would cost $0.05 (2 images \u00d7 $0.025); this session has spent "
        "$0.05 of its $0.06 budget; nothing was submitted "
        "(raise it with %fal config budget=... (or budget=off))"
    )
    # What is still affordable goes through, a replay is free, and a cost that cannot be
    # known before the run (per token) is refused rather than guessed.
    session.run("local/echo", {"a": 1})  # $0.01: exactly the rest
    session.run("local/text-to-image", TWO_IMAGES, seed=1)  # replayed
    with pytest.raises(BudgetExceededError, match="only known after it runs"):
        session.run("local/llm", {"prompt": "hi"})
    with pytest.raises(BudgetExceededError, match="no known price"):
        session.run("local/stream-text", {"prompt": "a"})
    assert [e.path for e in server.journal.accepted_submissions()] == ["/_queue/local/echo"]
    session.config.budget = None
    assert session.run("local/llm", {"prompt": "hi", "max_tokens": 3}).units == 3.0


@pytest.mark.parametrize(
    ("unit", "arguments", "units"),
    [
        ("request", {}, 1.0),
        ("image", {"num_images": 3}, 3.0),
        ("images", {}, 1.0),
        ("megapixel", {"image_size": "square_hd"}, 1.048576),
        ("megapixels", {"image_size": {"width": 500, "height": 200}, "num_images": 2}, 0.2),
        ("second", {"duration": "5s"}, 5.0),
        ("seconds", {"duration": 2.5}, 2.5),
        ("second", {}, None),
        ("token", {"max_tokens": 5}, None),
        ("compute seconds", {}, None),
    ],
)
def test_an_estimate_before_paying_where_the_unit_allows_one(
    unit: str, arguments: dict[str, Any], units: float | None
) -> None:
    from falnb.pricing import estimate_units

    assert estimate_units(unit, arguments) == (None if units is None else pytest.approx(units))
