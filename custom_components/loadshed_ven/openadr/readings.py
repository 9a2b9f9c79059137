"""The live values a VEN reports, read from the integration's callbacks (either OpenADR version).

A callback may fail or know nothing: the reading is then None and nothing is reported, never a
made-up value. A failure is logged once per run of failures, not at every sample.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from ..engine.status import VenStatus

_LOGGER = logging.getLogger(__name__)


class Reading[T]:
    """``callback()`` passed through ``convert``; None when unknown, unusable or failing."""

    def __init__(
        self,
        callback: Callable[[], object] | None,
        convert: Callable[[object], T | None],
        what: str,
    ) -> None:
        """``what`` names the value in the log: "The {what} callback failed"."""
        self._callback = callback
        self._convert = convert
        self._what = what
        self._failed = False

    def __call__(self) -> T | None:
        """The value now."""
        if self._callback is None:
            return None
        try:
            value = self._convert(self._callback())
        except Exception:  # a failing callback must not break polling or reporting
            if not self._failed:
                _LOGGER.exception(
                    "The %s callback failed; no %s is reported", self._what, self._what
                )
            self._failed = True
            return None
        self._failed = False
        return value


def watts(value: object) -> float | None:
    """A power reading in W: a finite number (not a bool), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        found = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


def plain_status(value: object) -> VenStatus | None:
    """A status in plain types; raises when ``value`` is no status at all.

    Plain types because a value the 2.0b template cannot format would end openleadr's sender.
    """
    if value is None:
        return None
    status: VenStatus = value  # type: ignore[assignment]
    return VenStatus(
        online=bool(status.online),
        manual_override=bool(status.manual_override),
        level=int(status.level),
        curtailed=bool(status.curtailed),
    )
