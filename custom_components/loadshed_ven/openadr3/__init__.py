"""OpenADR 3.x for the VEN: a small REST/JSON client on Home Assistant's shared aiohttp session.

Why not a library: ``toadr3`` (the best fit on PyPI, async and session-friendly) validates a
whole ``GET /events`` list with one pydantic model, so one malformed event hides every other
one; it restricts ids to ``^[a-zA-Z0-9_-]*$``, does not bound body sizes, reads only 3.0.1
valuesMap targets and has no programs call. The few requests a VEN needs are simpler to
bound here: ``auth`` (OAuth2 client credentials), ``http`` (size-limited JSON), ``events``
(one event into the engine's dict shape, pure), ``reports`` and ``ven`` (the connection).
"""
