"""What every route's query string must be: each parameter given at most once (no route takes a list, and a
repeated one would silently mean only its last value)."""

from __future__ import annotations

from collections import Counter

from fastapi import Request

from edge_service.errors import InvalidRequest


def single_valued_query(request: Request) -> None:
    """A global dependency: 422 naming the parameters given more than once."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, n in counts.items() if n > 1)
    if repeated:
        raise InvalidRequest("query parameter given more than once: " + ", ".join(repeated[:5])
                             + " (give each at most once)")
