"""What ``falnb lock verify`` compares: the outputs, less what changes per run by nature."""

from __future__ import annotations

from falnb.repro.verify import comparable_outputs


def _display(text: str) -> dict[str, object]:
    return {"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}}


def test_a_sweeps_speed_is_not_compared_but_its_counts_are() -> None:
    recorded = _display("sweep local/text-to-image · 4/4 done · 0.5 jobs/s · 8.4 s")
    replayed = _display("sweep local/text-to-image · 4/4 done · 61.3 jobs/s · 0.1 s")
    one_failed = _display("sweep local/text-to-image · 3/4 done · 1 failed · 0.5 jobs/s · 8.4 s")
    throttled = _display(
        "sweep e · 4/4 done · 2.0 jobs/s · rate limited 3x (concurrency 2) · 2.5 s"
    )
    assert comparable_outputs({"outputs": [recorded]}) == comparable_outputs(
        {"outputs": [replayed]}
    )
    assert comparable_outputs({"outputs": [recorded]}) != comparable_outputs(
        {"outputs": [one_failed]}
    )
    assert comparable_outputs({"outputs": [throttled]})[0]["data"]["text/plain"] == (
        "sweep e · 4/4 done · rate limited 3x (concurrency 2)"
    )
    # A number of seconds anywhere else is the notebook's own output, and compared.
    assert comparable_outputs({"outputs": [_display("took 3 s")]}) != comparable_outputs(
        {"outputs": [_display("took 4 s")]}
    )
