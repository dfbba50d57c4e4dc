"""Progress and cancellation for the media apps: ``step i/N`` log lines, an early stop."""

from __future__ import annotations

import time
from collections.abc import Iterator

from falnb.local.apperror import AppError
from falnb.local.registry import Context

__all__ = ["Timer", "check_cancelled", "steps"]


def check_cancelled(ctx: Context) -> None:
    """Stop a handler whose caller cancelled, with the answer fal gives a cancelled request."""
    if ctx.cancelled.is_set():
        raise AppError(499, "Request cancelled", "client_cancelled")


def steps(ctx: Context, total: int, label: str = "step") -> Iterator[int]:
    """Yield ``1..total``, logging ``"step i/N"`` after each (progress bars parse these lines).

    Checks cancellation before every step, so a cancelled request stops within one step.
    """
    for index in range(1, total + 1):
        check_cancelled(ctx)
        yield index
        ctx.log(f"{label} {index}/{total}")


class Timer:
    """Wall time of the work, reported as fal's ``timings: {"inference": seconds}``."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def timings(self) -> dict[str, float]:
        return {"inference": round(time.perf_counter() - self._start, 4)}
