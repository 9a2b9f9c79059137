"""The OpenADR 2.0b ``TELEMETRY_STATUS`` report: the building's :class:`VenStatus` for the VTN.

openleadr 0.5.36 can offer a TELEMETRY_STATUS report (``add_report``), but its oadrUpdateReport
template (openleadr/templates/oadrUpdateReport.xml) renders every interval value as
``ei:payloadFloat``, so a status cannot be sent (OpenLEADR/openleadr-python#108). :func:`install`
puts a ``ChoiceLoader`` in front of the loader of ``openleadr.messaging.TEMPLATES``: its
oadrUpdateReport template is openleadr's, except that an interval whose value is a
:class:`VenStatus` renders as a schema-valid ``oadr:oadrPayloadResourceStatus``. openleadr signs
after rendering (openleadr/messaging.py:109-126), so a signature covers the status too. The
change is process-wide, but every message without a status renders exactly as before.

The template is a string here, so no render reads a file in the event loop. jinja caches
templates per loader, so changing the loader means openleadr's templates are read again:
:func:`install` does that, once, and blocks (run it in an executor).
``tests/openadr/test_status_report.py`` fails when openleadr's own template changes.

:func:`add_power_report`, the TELEMETRY_USAGE report offered beside it, is here too, so that
the reports the VEN offers are declared in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import openleadr.messaging
from jinja2 import BaseLoader, ChoiceLoader, DictLoader
from openleadr import enums, objects

from ..engine.status import VenStatus
from .client import VenClient
from .readings import Reading, plain_status

_LOGGER = logging.getLogger(__name__)

TEMPLATE_NAME = "oadrUpdateReport.xml"


def _any_rate() -> objects.SamplingRate:
    """The sampling rates offered: the VTN may ask for anything from 1 s to 1 h."""
    return objects.SamplingRate(
        min_period=timedelta(seconds=1), max_period=timedelta(hours=1), on_change=False
    )


# openleadr's payload of one interval, replaced in TEMPLATE by STATUS_PAYLOAD.
FLOAT_PAYLOAD = """\
            <ei:payloadFloat>
              <ei:value>{{ interval.report_payload.value }}</ei:value>
            </ei:payloadFloat>
"""
# Element order as in oadr_20b.xsd (oadrPayloadResourceStatusType, oadrLoadControlStateTypeType);
# the level offset is the SIMPLE level: 0 (normal) to 3.
STATUS_PAYLOAD = (
    """\
            {% if interval.report_payload.value.online is defined %}
            {% set status = interval.report_payload.value %}
            <oadr:oadrPayloadResourceStatus>
              <oadr:oadrOnline>{{ status.online|booleanformat }}</oadr:oadrOnline>
              <oadr:oadrManualOverride>{{ status.manual_override|booleanformat }}</oadr:oadrManualOverride>
              <oadr:oadrLoadControlState>
                <oadr:oadrLevelOffset>
                  <oadr:oadrMin>0</oadr:oadrMin>
                  <oadr:oadrMax>3</oadr:oadrMax>
                  <oadr:oadrCurrent>{{ status.level }}</oadr:oadrCurrent>
                  <oadr:oadrNormal>0</oadr:oadrNormal>
                </oadr:oadrLevelOffset>
              </oadr:oadrLoadControlState>
            </oadr:oadrPayloadResourceStatus>
            {% else %}
"""  # noqa: E501 - template lines are XML, kept whole
    + FLOAT_PAYLOAD
    + """\
            {% endif %}
"""
)

# openleadr 0.5.36's oadrUpdateReport.xml with STATUS_PAYLOAD in place of FLOAT_PAYLOAD.
TEMPLATE = (
    """\
<oadr:oadrSignedObject xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07" xmlns:pyld="http://docs.oasis-open.org/ns/energyinterop/201110/payloads" xmlns:emix="http://docs.oasis-open.org/ns/emix/2011/06" oadr:Id="oadrSignedObject">
  <oadr:oadrUpdateReport ei:schemaVersion="2.0b" xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110">
    <pyld:requestID>{{ request_id }}</pyld:requestID>
    {% if reports %}
    {% for report in reports %}
    <oadr:oadrReport xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0">
      {% if report.dtstart is defined and report.dtstart is not none %}
      <xcal:dtstart>
        <xcal:date-time>{{ report.dtstart|datetimeformat }}</xcal:date-time>
      </xcal:dtstart>
      {% endif %}

      {% if report.intervals %}
      <strm:intervals xmlns:strm="urn:ietf:params:xml:ns:icalendar-2.0:stream" xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0">
        {% for interval in report.intervals %}
        <ei:interval>
          <xcal:dtstart>
            <xcal:date-time>{{ interval.dtstart|datetimeformat }}</xcal:date-time>
          </xcal:dtstart>
          {% if interval.duration is defined and interval.duration is not none %}
          <xcal:duration>
            <xcal:duration>{{ interval.duration|timedeltaformat }}</xcal:duration>
          </xcal:duration>
          {% endif %}
          <oadr:oadrReportPayload>
            <ei:rID>{{ interval.report_payload.r_id }}</ei:rID>
            {% if interval.report_payload.confidence is defined and interval.report_payload.confidence is not none %}
            <ei:confidence>{{ interval.report_payload.confidence }}</ei:confidence>
            {% endif %}
            {% if interval.report_payload.accuracy is defined and interval.report_payload.accuracy is not none %}
            <ei:accuracy>{{ interval.report_payload.accuracy }}</ei:accuracy>
            {% endif %}
"""  # noqa: E501 - openleadr's template lines, copied verbatim
    + STATUS_PAYLOAD
    + """\
            {% if interval.report_payload.data_quality is defined and interval.report_payload.data_quality is not none %}
            <oadr:oadrDataQuality>{{ interval.report_payload.data_quality }}</oadr:oadrDataQuality>
            {% endif %}
          </oadr:oadrReportPayload>
        </ei:interval>
        {% endfor %}
      </strm:intervals>
      {% endif %}

      <ei:eiReportID>{{ report.report_id }}</ei:eiReportID>
      {% if report.report_descriptions %}
      {% for report_description in report.report_descriptions %}
      {% include 'parts/oadrReportDescription.xml' %}
      {% endfor %}
      {% endif %}
      <ei:reportRequestID>{{ report.report_request_id }}</ei:reportRequestID>
      <ei:reportSpecifierID>{{ report.report_specifier_id }}</ei:reportSpecifierID>
      {% if report.report_name %}
      <ei:reportName>{{ report.report_name }}</ei:reportName>
      {% endif %}
      <ei:createdDateTime>{{ report.created_date_time|datetimeformat }}</ei:createdDateTime>
    </oadr:oadrReport>
    {% endfor %}
    {% endif %}
    {% if ven_id is defined and ven_id is not none %}
    <ei:venID>{{ ven_id }}</ei:venID>
    {% endif %}
  </oadr:oadrUpdateReport>
</oadr:oadrSignedObject>
"""  # noqa: E501 - openleadr's template lines, copied verbatim
)


class _StatusLoader(DictLoader):
    """The loader :func:`install` adds; its type tells an installed environment apart."""


def installed() -> bool:
    """Whether openleadr's templates render statuses."""
    loader = openleadr.messaging.TEMPLATES.loader
    return isinstance(loader, ChoiceLoader) and any(
        isinstance(item, _StatusLoader) for item in loader.loaders
    )


def install() -> None:
    """Let openleadr's oadrUpdateReport render statuses (idempotent; blocking: reads files).

    Every template is loaded again under the new loader, so that no later render reads a file.
    """
    if installed():
        return
    templates = openleadr.messaging.TEMPLATES
    original: BaseLoader | None = templates.loader
    if original is None:
        raise RuntimeError("openleadr's message templates have no loader")
    templates.loader = ChoiceLoader([_StatusLoader({TEMPLATE_NAME: TEMPLATE}), original])
    for name in templates.list_templates():
        templates.get_template(name)


class StatusSampler:
    """The report callback: ``[(utc now, status)]``, or ``[]`` while the status is unknown.

    A list return never trips APScheduler's error log and an empty one adds no interval, so
    the VTN gets no status rather than a made-up one when ``status`` fails or returns None.
    """

    def __init__(self, status: Callable[[], VenStatus | None]) -> None:
        self._status = Reading(status, plain_status, "status")

    def __call__(self) -> list[tuple[datetime, VenStatus]]:
        """Sample the status now."""
        status = self._status()
        return [] if status is None else [(datetime.now(UTC), status)]


def add_status_report(
    client: VenClient, callback: Callable[[], VenStatus | None], resource_id: str
) -> None:
    """Offer TELEMETRY_STATUS of ``resource_id`` at any sampling rate from 1 s to 1 h.

    ``callback`` returns the current status, or None when it is unknown. :func:`install` must
    have run: openleadr's own template cannot render a status.
    """
    if not installed():
        raise RuntimeError("install() must run before a status report is offered")
    client.add_report(
        callback=StatusSampler(callback),
        resource_id=resource_id,
        data_collection_mode="incremental",
        report_name=enums.REPORT_NAME.TELEMETRY_STATUS,
        reading_type=enums.READING_TYPE.X_NOT_APPLICABLE,
        report_type=enums.REPORT_TYPE.X_RESOURCE_STATUS,
        report_duration=timedelta(hours=1),
        sampling_rate=_any_rate(),
    )


def add_power_report(
    client: VenClient, callback: Callable[[], list[tuple[Any, float]]], resource_id: str
) -> None:
    """Offer TELEMETRY_USAGE real power in W at any sampling rate from 1 s to 1 h.

    ``callback`` returns ``[(utc_datetime, watts)]`` or ``[]`` when there is no value: a list
    return never trips APScheduler's error log and an empty one adds no sample.
    """
    client.add_report(
        callback=callback,
        resource_id=resource_id,
        # A copy: add_report writes the scale into the measurement it is given.
        measurement=replace(enums.MEASUREMENTS.POWER_REAL),
        data_collection_mode="incremental",
        report_name=enums.REPORT_NAME.TELEMETRY_USAGE,
        report_duration=timedelta(hours=1),
        sampling_rate=_any_rate(),
        scale="none",
    )
