"""Human durations for the command line: ``90s``, ``10m``, ``1h30m``, ``PT10M`` or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_ISO = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` into a timedelta; raise ValueError with a readable message."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration")
    try:
        return timedelta(seconds=float(raw))
    except ValueError:
        pass
    if iso := _ISO.match(raw):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    lowered = raw.lower()
    parts = _PART.findall(lowered)
    if not parts or "".join(n + u for n, u in parts) != lowered:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
