"""The 2.0b TELEMETRY_STATUS report: template, sampling, and the VEN against the simulated VTN."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openleadr
import openleadr.messaging
import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from openleadr import objects, utils

from custom_components.loadshed_ven.engine.status import VenStatus
from custom_components.loadshed_ven.openadr import status_report
from custom_components.loadshed_ven.openadr.status_report import (
    FLOAT_PAYLOAD,
    STATUS_PAYLOAD,
    TEMPLATE,
    StatusSampler,
    install,
    installed,
)
from custom_components.loadshed_ven.openadr.ven import Backoff, VenConnection, VenSettings
from sim.control import build_app
from sim.pki import SimTls
from sim.vtn import SimVtn, StatusRecord
from tests.vtn_fixtures import wait_for

pytestmark = pytest.mark.compat

PACKAGE = Path(openleadr.__file__).parent
NS = {
    "oadr": "http://openadr.org/oadr-2.0b/2012/07",
    "ei": "http://docs.oasis-open.org/ns/energyinterop/201110",
}
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)
NORMAL = VenStatus(online=True, manual_override=False, level=0, curtailed=False)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PACKAGE / "schema" / "oadr_20b.xsd")))


def status_message(*values: Any) -> str:
    """An oadrUpdateReport from openleadr's message factory, one interval per value."""
    install()
    now = datetime.now(UTC)
    intervals = [
        objects.ReportInterval(
            dtstart=now, report_payload=objects.ReportPayload(r_id=f"r{i}", value=value)
        )
        for i, value in enumerate(values)
    ]
    report = objects.Report(
        report_request_id="request",
        report_specifier_id="specifier",
        report_name="TELEMETRY_STATUS",
        intervals=intervals,
        created_date_time=now,
    )
    message: str = openleadr.messaging.create_message(
        "oadrUpdateReport", ven_id="ven", request_id="req", reports=[report]
    )
    return message


# ------------------------------------------------------------------- template


def test_template_is_openleadrs_with_the_status_branch() -> None:
    original = (PACKAGE / "templates" / "oadrUpdateReport.xml").read_text()
    assert original.count(FLOAT_PAYLOAD) == 1
    assert TEMPLATE.replace(STATUS_PAYLOAD, FLOAT_PAYLOAD) == original


def test_install_is_idempotent() -> None:
    install()
    loader = openleadr.messaging.TEMPLATES.loader
    install()
    assert installed()
    assert openleadr.messaging.TEMPLATES.loader is loader


def test_status_payload_is_schema_valid(schema: etree.XMLSchema) -> None:
    message = status_message(VenStatus(True, True, 2, True), 1234.5)
    tree = etree.fromstring(message.encode())
    schema.assertValid(tree)
    status, power = tree.findall(".//oadr:oadrReportPayload", NS)
    [resource] = status.findall("oadr:oadrPayloadResourceStatus", NS)
    assert [child.tag.split("}")[1] for child in resource] == [
        "oadrOnline",
        "oadrManualOverride",
        "oadrLoadControlState",
    ]
    assert resource.findtext("oadr:oadrOnline", namespaces=NS) == "true"
    assert resource.findtext("oadr:oadrManualOverride", namespaces=NS) == "true"
    offset = resource.find("oadr:oadrLoadControlState/oadr:oadrLevelOffset", NS)
    assert offset is not None
    assert [(child.tag.split("}")[1], child.text) for child in offset] == [
        ("oadrMin", "0"),
        ("oadrMax", "3"),
        ("oadrCurrent", "2"),
        ("oadrNormal", "0"),
    ]
    assert power.findtext("ei:payloadFloat/ei:value", namespaces=NS) == "1234.5"
    # openleadr's own check, as a VTN on openleadr runs it.
    openleadr.messaging.validate_xml_schema(message)


def test_offline_status_is_schema_valid(schema: etree.XMLSchema) -> None:
    message = status_message(VenStatus(False, False, 0, False))
    tree = etree.fromstring(message.encode())
    schema.assertValid(tree)
    assert tree.findtext(".//oadr:oadrOnline", namespaces=NS) == "false"


def test_offer_needs_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    install()
    loader: Any = openleadr.messaging.TEMPLATES.loader
    monkeypatch.setattr(openleadr.messaging.TEMPLATES, "loader", loader.loaders[1])
    assert not installed()
    with pytest.raises(RuntimeError, match="install"):
        status_report.add_status_report(object(), lambda: NORMAL, "main_meter")  # type: ignore[arg-type]


# -------------------------------------------------------------------- sampler


def test_sampler_reports_only_a_known_status(caplog: pytest.LogCaptureFixture) -> None:
    current: list[Any] = [NORMAL]

    def status() -> VenStatus | None:
        value = current[0]
        if isinstance(value, Exception):
            raise value
        return value  # type: ignore[no-any-return]

    sampler = StatusSampler(status)
    [(at, sample)] = sampler()
    assert sample == NORMAL
    assert at.tzinfo is UTC
    assert abs(datetime.now(UTC) - at) < timedelta(seconds=5)
    current[0] = None
    assert sampler() == []
    current[0] = RuntimeError("points unknown")
    assert sampler() == []
    assert sampler() == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # logged once per run of failures
    current[0] = VenStatus(online=1, manual_override=0, level=2.0, curtailed=1)  # type: ignore[arg-type]
    [(_, sample)] = sampler()
    assert sample == VenStatus(True, False, 2, True)
    assert type(sample.level) is int


# ------------------------------------------------------------- against a VTN


class Building:
    """What the integration hands the VEN: a status that a test changes, and the power."""

    def __init__(self) -> None:
        self.status: VenStatus | None = NORMAL
        self.fail = False
        self.sent: list[str] = []

    def current(self) -> VenStatus | None:
        if self.fail:
            raise RuntimeError("no point has answered yet")
        return self.status


Factory = Callable[..., Any]


@pytest.fixture
async def make_ven(socket_enabled: None) -> AsyncIterator[Factory]:
    vens: list[VenConnection] = []

    async def factory(settings: VenSettings, building: Building) -> VenConnection:
        ven = VenConnection(
            settings,
            asyncio.to_thread,
            on_event=_opt_in,
            meter_power=lambda: 1500.0,
            status=building.current,
            backoff=FAST,
        )
        vens.append(ven)
        ven.start()
        await wait_for(lambda: ven.connected)
        assert ven._client is not None
        ven._client.add_hook("before_send_xml", building.sent.append)
        return ven

    yield factory
    for ven in vens:
        await ven.stop()


async def _opt_in(event: Any) -> Any:
    return "optIn"


async def test_status_reaches_the_vtn_beside_power(
    socket_enabled: None, make_ven: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    vtn = SimVtn(report_sampling=timedelta(seconds=1))
    await vtn.start()
    try:
        building = Building()
        ven = await make_ven(VenSettings(vtn.url, "status-building"), building)
        await wait_for(lambda: vtn.statuses and vtn.reports)
        first = vtn.statuses[0]
        assert ven.registration is not None
        assert (first.ven_id, first.resource_id) == (ven.registration.ven_id, "main_meter")
        assert (first.online, first.manual_override, first.level) == (True, False, 0)
        assert first.dtstart.tzinfo is not None
        assert vtn.reports[0].value == 1500.0
        assert ven.recent_reports
        # openleadr's shared r_id list is repaired: each request asks only for its own r_id.
        assert ven._client is not None
        assert [len(request["r_ids"]) for request in ven._client.report_requests] == [1, 1]
        assert all(watts == 1500.0 for _, watts in ven.recent_reports)

        building.status = VenStatus(online=True, manual_override=True, level=2, curtailed=True)
        await wait_for(lambda: vtn.statuses[-1].level == 2)
        assert vtn.statuses[-1].manual_override is True
        building.status = VenStatus(online=False, manual_override=False, level=3, curtailed=False)
        await wait_for(lambda: vtn.statuses[-1].online is False)
        assert vtn.statuses[-1].level == 3

        # Unknown (None) or failing: no status interval at all, while power goes on.
        for unknown in ("none", "raise"):
            building.status, building.fail = (None, False) if unknown == "none" else (NORMAL, True)
            await asyncio.sleep(1.2)  # a sample in flight may still arrive
            statuses, reports = len(vtn.statuses), len(vtn.reports)
            await asyncio.sleep(2.5)
            assert len(vtn.statuses) == statuses
            assert len(vtn.reports) > reports
        building.status, building.fail = NORMAL, False
        count = len(vtn.statuses)
        await wait_for(lambda: len(vtn.statuses) > count)
        assert vtn.statuses[-1].online is True
        assert any("oadrPayloadResourceStatus" in sent for sent in building.sent)
    finally:
        await vtn.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["The status callback failed; no status is reported"]


async def test_signed_status_report(tls_vtn: SimVtn, pki: SimTls, make_ven: Factory) -> None:
    tls_vtn.report_sampling = timedelta(seconds=1)
    settings = VenSettings(
        tls_vtn.url,
        "signed-building",
        cert_file=str(pki.ven_cert),
        key_file=str(pki.ven_key),
        key_passphrase=pki.passphrase,
        ca_file=str(pki.ca_cert),
        vtn_fingerprint=pki.vtn_fingerprint,
    )
    building = Building()
    building.status = VenStatus(online=True, manual_override=False, level=1, curtailed=True)
    await make_ven(settings, building)
    # The VTN checks every message's signature against the VEN's certificate.
    await wait_for(lambda: tls_vtn.statuses)
    assert tls_vtn.statuses[-1].level == 1
    await wait_for(lambda: any("oadrPayloadResourceStatus" in sent for sent in building.sent))
    [signed, *_] = [sent for sent in building.sent if "oadrPayloadResourceStatus" in sent]
    tree = openleadr.messaging.validate_xml_schema(signed)
    # As validate_xml_signature does, without its replay check (the VTN has seen this nonce).
    cert = utils.extract_pem_cert(tree)
    assert utils.certificate_fingerprint(cert) == pki.ven_fingerprint
    results = openleadr.messaging.VERIFIER.verify(
        tree, x509_cert=utils.ensure_bytes(cert), expect_references=2
    )
    # One reference is the signed object with the status, the other the replay protection.
    assert any(b"oadrPayloadResourceStatus" in result.signed_data for result in results)


async def test_reregistration_keeps_both_reports(
    socket_enabled: None, make_ven: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    vtn = SimVtn(report_sampling=timedelta(seconds=1))
    await vtn.start()
    try:
        ven = await make_ven(VenSettings(vtn.url, "status-building"), Building())
        await wait_for(lambda: vtn.statuses and vtn.reports)
        assert ven.registration is not None
        vtn.request_reregistration(ven.registration.ven_id)
        await wait_for(lambda: vtn.registered_vens()[0].registrations == 2)
        statuses, reports = len(vtn.statuses), len(vtn.reports)
        await wait_for(lambda: len(vtn.statuses) > statuses + 1 and len(vtn.reports) > reports + 1)
        assert ven._client is not None
        assert [len(request["r_ids"]) for request in ven._client.report_requests] == [1, 1]
    finally:
        await vtn.stop()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_control_api_lists_statuses(socket_enabled: None) -> None:
    vtn = SimVtn()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    vtn.statuses.append(StatusRecord("ven-1", "main_meter", at, True, False, 2))
    client = TestClient(TestServer(build_app(SimpleNamespace(vtn=vtn)), host="127.0.0.1"))  # type: ignore[arg-type]
    await client.start_server()
    try:
        response = await client.get("/statuses")
        assert response.status == 200
        assert await response.json() == [
            {
                "ven_id": "ven-1",
                "resource_id": "main_meter",
                "dtstart": at.isoformat(),
                "online": True,
                "manual_override": False,
                "level": 2,
            }
        ]
    finally:
        await client.close()
