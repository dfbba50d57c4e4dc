"""Sweeps and map confirm their cost before paying: an estimate above the session's
``confirm_above`` sends nothing and says what the jobs would cost; the same sweep run again
is confirmed. Over the local server (its pricing document gives the prices)."""

from __future__ import annotations

from pathlib import Path

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from tests.client.test_cost import TWO_IMAGES, priced_session


def test_a_sweep_above_the_threshold_shows_its_estimate_and_runs_when_asked_again(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    import falnb
    from falnb.pricing import ConfirmationRequiredError

    session = priced_session(client, tmp_path)
    session.config.confirm_above = 0.15
    base = {**TWO_IMAGES, "num_images": 2}
    # A first seed recorded: its job in the sweep replays for free.
    session.run("local/text-to-image", {**base, "seed": 1})
    server.journal.clear()
    seeds = [1, 2, 3, 4, 5]
    with pytest.raises(ConfirmationRequiredError) as asked:
        falnb.sweep("local/text-to-image", base, seed=seeds, session=session, quiet=True)
    assert str(asked.value) == (
        "these 4 jobs would cost about $0.20, above the $0.15 that needs confirming (1 more "
        "replay from the lock for free); nothing was submitted. Run it again to send them (or "
        "set %fal config confirm_above=... / confirm_above=off)"
    )
    assert server.journal.accepted_submissions() == []
    # Asked again: confirmed, and sent (the recorded job replays).
    results = falnb.sweep("local/text-to-image", base, seed=seeds, session=session, quiet=True)
    assert [r.replayed for r in results.ok] == [True, False, False, False, False]
    assert len(server.journal.accepted_submissions()) == 4
    # Below the threshold (map of two echoes, $0.02) nothing is asked.
    falnb.map("local/echo", [{"n": 1}, {"n": 2}], session=session, quiet=True)
    assert len(server.journal.accepted_submissions()) == 6


def test_on_fals_cloud_a_sweep_above_a_dollar_asks_by_default(
    server: LocalServer, tmp_path: Path
) -> None:
    import falnb
    from falnb._settings import Target
    from falnb.pricing import ConfirmationRequiredError

    base = server.base_url  # the local server standing in for fal's hosts, as in the kernels
    cloud = Target.fal(
        server.key,
        run_url=base,
        queue_url=f"{base}/_queue",
        rest_url=f"{base}/_rest",
        cdn_url=f"{base}/_cdn",
    )
    with SyncClient(cloud) as client:
        session = priced_session(client, tmp_path)
        session.config.record = "off"
        many = [{"n": n} for n in range(101)]  # 101 x $0.01 = $1.01
        with pytest.raises(ConfirmationRequiredError, match=r"101 jobs would cost about \$1\.01"):
            falnb.map("local/echo", many, session=session, quiet=True)
        assert server.journal.accepted_submissions() == []
        session.config.confirm_above = float("inf")  # %fal config confirm_above=off
        assert len(falnb.map("local/echo", many[:3], session=session, quiet=True).ok) == 3
