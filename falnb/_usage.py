"""This notebook's requests and what they cost: the ledger behind ``%fal usage``.

The Session adds every Result it hands out: a live run with its billed units and cost, a
replay from the lock as free. :meth:`Usage.rows` sums them per endpoint (and a total);
:meth:`Usage.frame` (``falnb.usage()``) returns those rows as a pandas DataFrame when pandas
is installed, else as the list of dicts.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

from falnb.pricing import describe_units, money
from falnb.result import Result

__all__ = ["Charge", "Usage"]


@dataclass(frozen=True)
class Charge:
    """One Result this session handed out."""

    endpoint: str
    request_id: str | None
    units: float | None
    unit: str | None
    cost: float | None
    currency: str
    replayed: bool


class Usage:
    """Every request this session ran or replayed, in order."""

    def __init__(self) -> None:
        self._charges: list[Charge] = []
        self._lock = threading.Lock()

    def add(self, result: Result) -> None:
        price = result.price
        charge = Charge(
            endpoint=result.endpoint,
            request_id=result.request_id,
            units=result.units,
            unit=price.unit if price is not None else None,
            cost=result.cost,
            currency=price.currency if price is not None else "USD",
            replayed=result.replayed,
        )
        with self._lock:
            self._charges.append(charge)

    @property
    def charges(self) -> list[Charge]:
        with self._lock:
            return list(self._charges)

    def spent(self) -> float:
        """What the live requests cost, as far as it is known."""
        return sum(c.cost or 0.0 for c in self.charges if not c.replayed)

    def rows(self) -> list[dict[str, Any]]:
        """Per endpoint: requests paid for, replays (free), units, the known cost and how many
        requests had no price; then a ``total`` row."""
        by_endpoint: dict[str, list[Charge]] = {}
        for charge in self.charges:
            by_endpoint.setdefault(charge.endpoint, []).append(charge)
        rows = [_row(endpoint, charges) for endpoint, charges in by_endpoint.items()]
        if rows:
            rows.append(_row("total", self.charges, units=False))
        return rows

    def frame(self) -> Any:
        """:meth:`rows` as a pandas DataFrame when pandas is installed, else the list itself."""
        rows = self.rows()
        try:
            pandas = importlib.import_module("pandas")  # optional: not a dependency
        except ImportError:
            return rows
        return pandas.DataFrame(rows)

    def table(self) -> str:
        """The rows as aligned text (what ``%fal usage`` prints)."""
        rows = self.rows()
        if not rows:
            return "No fal requests in this session yet."
        lines = [("endpoint", "requests", "replayed (free)", "units", "cost")]
        for row in rows:
            units = row["units"]
            shown_units = "" if units is None else describe_units(units, row["unit"])
            cost = money(row["cost"], row["currency"])
            if row["unpriced"]:
                cost += f" + {row['unpriced']} unpriced"
            lines.append(
                (
                    row["endpoint"],
                    str(row["requests"]),
                    str(row["replayed"]),
                    shown_units,
                    cost,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(5)]
        return "\n".join(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
            for line in lines
        )


def _row(endpoint: str, charges: list[Charge], *, units: bool = True) -> dict[str, Any]:
    live = [c for c in charges if not c.replayed]
    unit_names = {c.unit for c in live}
    known_units = [c.units for c in live if c.units is not None]
    costs = [c.cost for c in live if c.cost is not None]
    currencies = {c.currency for c in live} or {"USD"}
    return {
        "endpoint": endpoint,
        "requests": len(live),
        "replayed": len(charges) - len(live),
        # Units add up only within one endpoint (one unit); the total has none.
        "units": sum(known_units) if units and known_units else None,
        "unit": unit_names.pop() if units and len(unit_names) == 1 else None,
        "cost": sum(costs),
        "unpriced": len(live) - len(costs),
        "currency": currencies.pop() if len(currencies) == 1 else "mixed",
    }
