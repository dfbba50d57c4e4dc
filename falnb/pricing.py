"""What a request costs: endpoints' unit prices from fal's pricing API, and how to show them.

fal bills each successful request in its endpoint's unit (``image``, ``megapixel``,
``second``, ``token``, ``request``); the result's ``x-fal-billable-units`` says how many, and
``GET /v1/models/pricing`` says what one costs (fal-platform-apis.md 2.1, 2.3), so cost is
units x unit price. Prices are asked for once per endpoint and target in a session, and kept
on disk (``<cache>/prices.json``) for :data:`MAX_AGE`; a target with no key, a failed ask, or
an endpoint fal has no price for leaves the price unknown (the units alone are shown).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from falnb import _runtime
from falnb._protocol import IMAGE_SIZE_PRESETS
from falnb._settings import PLATFORM_API_URL, Target
from falnb.client._transport import NO_RETRY
from falnb.client.errors import FalError
from falnb.repro.store import atomic_write, default_cache_dir

__all__ = [
    "MAX_AGE",
    "PLATFORM_API_URL",
    "BudgetExceededError",
    "ConfirmationRequiredError",
    "Price",
    "Prices",
    "describe_units",
    "estimate_units",
    "money",
    "platform_url",
]

#: How long a price read from fal is trusted from the disk cache, in seconds.
MAX_AGE = 24 * 3600.0
_ASK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Price:
    """One endpoint's price: ``unit_price`` (in ``currency``) per ``unit``."""

    endpoint_id: str
    unit_price: float
    unit: str
    currency: str = "USD"

    def cost(self, units: float) -> float:
        return units * self.unit_price

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price | None:
        try:
            price = float(data["unit_price"])
            unit = str(data["unit"])
            endpoint_id = str(data["endpoint_id"])
        except (KeyError, TypeError, ValueError):
            return None
        return cls(endpoint_id, price, unit, str(data.get("currency") or "USD"))


class BudgetExceededError(FalError):
    """A call the notebook's budget refuses: nothing was submitted. The message says what is
    spent, what the call would cost, and how to raise or clear the budget."""


class ConfirmationRequiredError(FalError):
    """A sweep whose estimate passes the confirmation threshold, not sent: the message gives
    the estimate; running the same sweep again confirms it."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().removesuffix("s"))  # fal's durations: "5", "5s"
        except ValueError:
            return None
    return None


def _pixels(arguments: Mapping[str, Any]) -> float | None:
    size = arguments.get("image_size", "landscape_4_3")
    width: float
    height: float
    if isinstance(size, str):
        width, height = IMAGE_SIZE_PRESETS.get(size, (0, 0))
    elif isinstance(size, Mapping):
        width, height = (_number(size.get("width")) or 0.0), (_number(size.get("height")) or 0.0)
    else:
        return None
    return width * height or None


def estimate_units(unit: str, arguments: Mapping[str, Any]) -> float | None:
    """How many ``unit`` a call with ``arguments`` will bill, when that is known before it
    runs (per request; per image: ``num_images``; per megapixel: ``image_size`` x
    ``num_images``; per second: ``duration``); None when it is not (tokens, compute time)."""
    name = unit.strip().lower().removesuffix("s")
    count = arguments.get("num_images", 1)
    images = float(count) if isinstance(count, int) and not isinstance(count, bool) else None
    if name in ("request", "call"):
        return 1.0
    if name == "image":
        return images
    if name == "megapixel":
        pixels = _pixels(arguments)
        return None if pixels is None or images is None else images * pixels / 1e6
    if name in ("second", "video_second", "audio_second"):
        return _number(arguments.get("duration"))
    return None


def money(amount: float, currency: str = "USD") -> str:
    """``$0.075``: enough places to show a fraction of a cent, no trailing zeros past cents."""
    text = f"{amount:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    text = f"{whole}.{cents.ljust(2, '0')}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def describe_units(units: float, unit: str | None) -> str:
    """``3 images``, ``0.26 megapixels``, ``1 request``; ``3 units`` when the unit is unknown."""
    count = f"{units:.0f}" if float(units).is_integer() else f"{units:.4g}"
    name = unit or "unit"
    if units != 1 and not name.endswith("s") and " " not in name:
        name += "s"
    return f"{count} {name}"


def platform_url(target: Target) -> str:
    """Where ``target`` serves fal's Platform API (``.../v1``): fal's own beside fal's hosts,
    else under the server's REST root (as the local server serves it)."""
    return target.platform_url


def pricing_url(target: Target) -> str:
    """Where ``target`` serves the pricing document."""
    return f"{platform_url(target)}/models/pricing"


class Prices:
    """Unit prices by target and endpoint, asked for once per session and cached on disk.

    ``path`` is the disk cache (default ``<falnb cache>/prices.json``; None keeps prices in
    memory only). A local server's prices are kept by the name ``local`` (its port changes
    between sessions, its prices do not).
    """

    def __init__(self, path: Path | str | None = "default", *, max_age: float = MAX_AGE) -> None:
        self.path = default_cache_dir() / "prices.json" if path == "default" else path
        self.max_age = max_age
        self._known: dict[tuple[str, str], Price | None] = {}
        self._lock = threading.Lock()

    def get(self, client: Any, endpoint: str) -> Price | None:
        """The price of ``endpoint`` on ``client``'s target, or None when it is not known."""
        target: Target = client.target
        where = "local" if target.name == "local" else pricing_url(target)
        key = (where, endpoint)
        with self._lock:
            if key in self._known:
                return self._known[key]
        price = self._from_disk(where, endpoint)
        if price is None and target.key is not None:
            price = self._ask(client, target, endpoint)
            if price is not None:
                self._to_disk(where, price)
        with self._lock:
            self._known[key] = price
        return price

    def _ask(self, client: Any, target: Target, endpoint: str) -> Price | None:
        transport = client.async_client._transport()
        try:
            response = _runtime.run(
                transport.request(
                    "GET",
                    pricing_url(target),
                    params={"endpoint_id": endpoint},
                    retry=NO_RETRY,
                    timeout=_ASK_TIMEOUT,
                )
            )
            body = response.json()
        except (FalError, OSError, ValueError):
            return None  # no price: the units alone are shown
        prices = body.get("prices") if isinstance(body, dict) else None
        for item in prices if isinstance(prices, list) else []:
            price = Price.from_json(item) if isinstance(item, dict) else None
            if price is not None and price.endpoint_id == endpoint:
                return price
        return None

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(Path(self.path).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _from_disk(self, where: str, endpoint: str) -> Price | None:
        saved = self._read().get(where, {}).get(endpoint)
        if not isinstance(saved, dict):
            return None
        fetched = saved.get("fetched")
        if not isinstance(fetched, (int, float)) or time.time() - fetched > self.max_age:
            return None
        return Price.from_json(saved)

    def _to_disk(self, where: str, price: Price) -> None:
        if self.path is None:
            return
        with self._lock:
            data = self._read()
            data.setdefault(where, {})[price.endpoint_id] = {
                **asdict(price),
                "fetched": time.time(),
            }
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                atomic_write(Path(self.path), json.dumps(data, indent=1).encode())
            except OSError:
                pass  # a cache that cannot be written is asked again next session
