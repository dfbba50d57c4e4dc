"""The local server bills as fal's apps do: ``x-fal-billable-units`` on each successful run
and result, counted in the endpoint's own unit, and a pricing document at
``/_rest/v1/models/pricing`` naming that unit and its price."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from falnb.local import LocalServer


def _png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _billed_run(http: httpx.Client, endpoint: str, arguments: dict[str, Any]) -> float:
    response = http.post(f"/{endpoint}", json=arguments)
    assert response.status_code == 200, response.text
    return float(response.headers["x-fal-billable-units"])


SMALL = {"width": 64, "height": 48}


@pytest.mark.parametrize(
    ("endpoint", "arguments", "units"),
    [
        ("local/echo", {"a": 1}, 1.0),  # per request
        ("local/text-to-image", {"prompt": "sun", "image_size": SMALL, "num_images": 2}, 2.0),
        (
            "local/image-to-image",
            {"prompt": "x", "image_url": _png(100, 50), "num_inference_steps": 1},
            0.005,  # one 100x50 image: 0.005 megapixels
        ),
        # The video made (round(1.3 s x 10 fps) = 13 frames = 1.3 s), not the asked duration.
        (
            "local/text-to-video",
            {"prompt": "sea", "duration": 1.3, "fps": 10, "image_size": SMALL},
            1.3,
        ),
        ("local/text-to-audio", {"prompt": "hum", "duration": 1.5}, 1.5),
        ("local/llm", {"prompt": "why is the sky blue", "max_tokens": 5}, 5.0),
    ],
)
def test_each_app_bills_in_its_own_unit(
    http: httpx.Client, endpoint: str, arguments: dict[str, Any], units: float
) -> None:
    assert _billed_run(http, endpoint, arguments) == pytest.approx(units)


def test_a_queued_result_carries_the_units_its_app_billed(http: httpx.Client, until: Any) -> None:
    arguments = {"prompt": "sun", "image_size": SMALL, "num_images": 3, "num_inference_steps": 1}
    submitted = http.post("/_queue/local/text-to-image", json=arguments).json()
    result = until(
        lambda: (r := http.get(submitted["response_url"])).status_code == 200 and r,
        what="the result",
    )
    assert result.headers["x-fal-billable-units"] == "3"
    assert len(result.json()["images"]) == 3


def test_a_failure_bills_nothing(http: httpx.Client) -> None:
    response = http.post("/local/fail", json={"status": 500, "detail": "boom"})
    assert response.status_code == 500
    assert "x-fal-billable-units" not in response.headers


def test_the_pricing_document_names_each_endpoints_unit_and_price(http: httpx.Client) -> None:
    response = http.get(
        "/_rest/v1/models/pricing",
        params=[
            ("endpoint_id", "local/text-to-image,local/image-to-image"),
            ("endpoint_id", "local/llm"),
            ("endpoint_id", "local/fail"),  # not priced: left out
            ("endpoint_id", "nobody/nothing"),  # not served: left out
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    assert {p["endpoint_id"]: (p["unit"], p["unit_price"]) for p in body["prices"]} == {
        "local/text-to-image": ("image", 0.025),
        "local/image-to-image": ("megapixel", 0.03),
        "local/llm": ("token", 0.000002),
    }
    assert {p["currency"] for p in body["prices"]} == {"USD"}


def test_the_pricing_document_needs_endpoint_ids_and_a_key(
    http: httpx.Client, server: LocalServer
) -> None:
    assert http.get("/_rest/v1/models/pricing").status_code == 422
    many = [("endpoint_id", f"local/e{i}") for i in range(51)]
    assert http.get("/_rest/v1/models/pricing", params=many).status_code == 422
    anonymous = httpx.get(f"{server.base_url}/_rest/v1/models/pricing?endpoint_id=local/echo")
    assert anonymous.status_code == 401
