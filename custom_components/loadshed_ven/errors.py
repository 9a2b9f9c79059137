"""The one place where what went wrong becomes a translated Home Assistant error.

Actions, buttons and switches raise only what this module builds, so every message a user sees
comes from the ``exceptions`` block of the translations, with data (point names, counts, ids) in
placeholders and never English text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .engine.overrides import FailureKind, PointState
from .engine.shed import ApplyReport
from .openadr.errors import VtnError

# How many point keys an error message lists before it stops.
MAX_LISTED: Final = 5

type PointOperation = Literal["write", "release"]


class UnknownEventError(LookupError):
    """An operator named an event this VEN has not seen (or no longer remembers)."""

    def __init__(self, event_id: str) -> None:
        """Keep the id for the message."""
        super().__init__(event_id)
        self.event_id = event_id


def raise_for_failures(report: ApplyReport, translation_key: str) -> None:
    """Raise a translated error naming the points that did not verify, if any."""
    if not report.failed:
        return
    listed = ", ".join(report.failed[:MAX_LISTED])
    if len(report.failed) > MAX_LISTED:
        listed += ", …"
    raise HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders={"count": str(len(report.failed)), "points": listed},
    )


def point_error(operation: PointOperation, state: PointState) -> HomeAssistantError:
    """An operator's write or release of one point did not verify: say why, by failure kind."""
    kind = state.failure or FailureKind.NOT_VERIFIED
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=f"{operation}_failed_{kind}",
        translation_placeholders={
            "point": state.point.label,
            "detail": f" ({state.detail})" if state.detail else "",
        },
    )


@contextmanager
def opt_errors(event_id: str, translation_key: str) -> Iterator[None]:
    """Translate what telling the VTN about an opt (or finding its event) can raise."""
    try:
        yield
    except UnknownEventError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_event",
            translation_placeholders={"event_id": err.event_id},
        ) from err
    except VtnError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=translation_key,
            translation_placeholders={"event_id": event_id, "error": str(err)},
        ) from err


def no_event() -> HomeAssistantError:
    """There is no event to opt out of (or back in to)."""
    return HomeAssistantError(translation_domain=DOMAIN, translation_key="no_event")


def level_does_not_shed(level: int, shed_level: int) -> ServiceValidationError:
    """A manual shed at a level the policy does not shed at."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="level_does_not_shed",
        translation_placeholders={"level": str(level), "shed_level": str(shed_level)},
    )
