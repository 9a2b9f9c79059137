"""Keep the VTN's report requests bounded and free of duplicates.

openleadr schedules one job per request it is sent, so a VTN asking for the VEN's single report
2,000 times made 2,000 jobs that starved the event loop. A message with more than
``MAX_REPORT_REQUESTS`` requests is refused unparsed (``guard.py``); here a request replaces an
earlier one with the same id or the same report, granularity and back duration, and at most
``MAX_REPORT_REQUESTS`` requests stay active (the oldest are cancelled first).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from apscheduler.jobstores.base import JobLookupError

from .guard import MAX_REPORT_REQUESTS

_LOGGER = logging.getLogger(__name__)


def _key(specifier: dict[str, Any]) -> tuple[str, str, str]:
    """What makes two requests the same: report, granularity and back duration."""
    return (
        str(specifier.get("report_specifier_id")),
        str(specifier.get("granularity")),
        str(specifier.get("report_back_duration")),
    )


def _request_key(request: dict[str, Any]) -> tuple[str, str, str] | None:
    """The key of an incoming request (its fields sit in ``report_specifier``)."""
    specifier = request.get("report_specifier")
    return _key(specifier) if isinstance(specifier, dict) else None


def drop_request(active: dict[str, Any]) -> None:
    """Unschedule one active request's job."""
    job = active.get("job")
    if job is not None:
        with contextlib.suppress(JobLookupError):
            job.remove()


def dedupe(requests: list[Any], active: list[dict[str, Any]]) -> list[Any]:
    """Return ``requests`` without duplicates, dropping the active requests they replace.

    ``active`` (openleadr's ``report_requests``) is changed in place.
    """
    kept: dict[object, dict[str, Any]] = {}
    for request in requests:
        if not isinstance(request, dict):
            continue
        request_id = str(request.get("report_request_id"))
        key = _request_key(request)
        for other_id, other in list(kept.items()):
            if other_id == request_id or (key is not None and _request_key(other) == key):
                del kept[other_id]
        kept[request_id] = request
    if len(kept) < len(requests):
        _LOGGER.debug("Ignored %d duplicate report requests", len(requests) - len(kept))
    ids = set(kept)
    keys = {_request_key(request) for request in kept.values()}
    for old in list(active):
        if str(old.get("report_request_id")) in ids or _key(old) in keys:
            drop_request(old)
            active.remove(old)
    return list(kept.values())


def enforce_limit(active: list[dict[str, Any]]) -> None:
    """Cancel the oldest active requests beyond ``MAX_REPORT_REQUESTS``."""
    while len(active) > MAX_REPORT_REQUESTS:
        old = active.pop(0)
        drop_request(old)
        _LOGGER.info(
            "Dropped the oldest report request %s: at most %d are served",
            old.get("report_request_id"),
            MAX_REPORT_REQUESTS,
        )


def keep_own_r_ids(offered: list[Any], requests: list[dict[str, Any]]) -> None:
    """Give each report request only the r_ids of its own report.

    openleadr 0.5.36's ``create_report`` makes one r_id list for all the requests of a
    message (openleadr/client.py:727, ``requested_r_ids``), so with two reports offered
    (usage and status), each request would ask for the other report's r_id too: an ERROR "No
    callback found" per sample and, when the VTN asks for more than one sample per report, a
    report waiting for twice the samples. The requests are complete when their
    oadrCreatedReport is sent (openleadr/client.py:829-841), before any report job runs: the
    client repairs them then.
    """
    by_id = {report.report_specifier_id: report for report in offered}
    for request in requests:
        report = by_id.get(request.get("report_specifier_id"))
        if report is not None:
            own = {description.r_id for description in report.report_descriptions}
            request["r_ids"] = [r_id for r_id in request.get("r_ids") or [] if r_id in own]
