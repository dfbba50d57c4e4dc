"""fal's pricing document for the local server's endpoints: ``GET /v1/models/pricing``.

Mounted under the REST root (``/_rest/v1/models/pricing``, fal's ``api.fal.ai/v1/...``) and
shaped like fal's: ``{prices: [{endpoint_id, unit_price, unit, currency}], next_cursor,
has_more}``. Each endpoint's unit and price come from its :class:`~falnb.local.Endpoint`;
an endpoint without a price, or one the server does not serve, is left out (as fal leaves
out what it has no price for). What a request bills in those units is its
``x-fal-billable-units`` header (``ctx.bill`` in the app).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from falnb.local.state import ServerState

__all__ = ["MAX_ENDPOINT_IDS", "pricing_routes"]

#: fal accepts 1-50 endpoint ids per request (comma-separated or repeated).
MAX_ENDPOINT_IDS = 50


def _endpoint_ids(request: Request) -> list[str]:
    ids: list[str] = []
    for value in request.query_params.getlist("endpoint_id"):
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(ids))


def pricing_routes(state: ServerState) -> list[BaseRoute]:
    """Routes relative to the REST root (the server mounts them at ``/_rest``)."""

    async def pricing(request: Request) -> Response:
        ids = _endpoint_ids(request)
        if not 1 <= len(ids) <= MAX_ENDPOINT_IDS:
            return JSONResponse(
                {"detail": f"endpoint_id: give 1 to {MAX_ENDPOINT_IDS} endpoint ids"},
                status_code=422,
            )
        prices: list[dict[str, Any]] = []
        for endpoint_id in ids:
            endpoint = state.registry.get(endpoint_id)
            if endpoint is None or endpoint.unit_price is None:
                continue
            prices.append(
                {
                    "endpoint_id": endpoint_id,
                    "unit_price": endpoint.unit_price,
                    "unit": endpoint.unit,
                    "currency": "USD",
                }
            )
        return JSONResponse({"prices": prices, "next_cursor": None, "has_more": False})

    return [Route("/v1/models/pricing", pricing, methods=["GET"])]
