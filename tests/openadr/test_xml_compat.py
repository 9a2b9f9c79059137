"""openleadr parses messages whichever xmltodict is installed (0.13; 1.0.4 in the compat pass).

Also the guard for every runtime change to a library listed in ``xml_compat``: each test named
``test_library_still_...`` checks that the library still has what a change relies on or exists
for, so an upgrade that moves it fails here instead of silently in the field.
"""

import asyncio
import inspect
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import pytest
import xmltodict
from openleadr import client as openleadr_client
from openleadr import messaging
from openleadr.service import vtn_service

from custom_components.loadshed_ven.openadr import xml_compat
from custom_components.loadshed_ven.openadr.factory import VenSettings, create_client
from sim import openleadr_compat

pytestmark = pytest.mark.compat

XMLTODICT_1 = int(version("xmltodict").split(".")[0]) >= 1


@pytest.fixture(autouse=True)
def _restore_library_state() -> Iterator[None]:
    original = messaging.xmltodict
    level = logging.getLogger("openleadr").level
    yield
    messaging.xmltodict = original
    logging.getLogger("openleadr").setLevel(level)


def _registration_reply() -> str:
    return messaging.create_message(
        "oadrCreatedPartyRegistration",
        response={"response_code": 200, "response_description": "OK", "request_id": "r1"},
        ven_id="ven1",
        registration_id="reg1",
        profiles=[
            {
                "profile_name": "2.0b",
                "transports": [{"transport_name": "simpleHttp"}],
            }
        ],
        requested_oadr_poll_freq=timedelta(seconds=7),
    )


def _event_message() -> str:
    start = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
    return messaging.create_message(
        "oadrDistributeEvent",
        response={"response_code": 200, "response_description": "OK", "request_id": "r2"},
        request_id="r2",
        vtn_id="VTN",
        events=[
            {
                "event_descriptor": {
                    "event_id": "e1",
                    "modification_number": 3,
                    "priority": 1,
                    "market_context": "http://mc",
                    "event_status": "far",
                    "created_date_time": start,
                },
                "active_period": {"dtstart": start, "duration": timedelta(minutes=30)},
                "event_signals": [
                    {
                        "signal_name": "simple",
                        "signal_type": "level",
                        "signal_id": "s1",
                        "intervals": [
                            {
                                "dtstart": start,
                                "duration": timedelta(minutes=30),
                                "uid": 0,
                                "signal_payload": 2,
                            }
                        ],
                    }
                ],
                "targets": [{"ven_id": "ven1"}],
                "response_required": "always",
            }
        ],
    )


def test_registration_reply_parses_to_plain_values() -> None:
    message_type, payload = xml_compat.parse_message(_registration_reply())
    assert message_type == "oadrCreatedPartyRegistration"
    # With the raw xmltodict 1.x tree this is a dict, and openleadr's client.run() fails.
    assert payload["requested_oadr_poll_freq"] == timedelta(seconds=7)
    assert payload["ven_id"] == "ven1"
    assert not any(key.startswith("@xmlns") for key in payload)


def test_event_parses_identically_to_xmltodict_013() -> None:
    _, payload = xml_compat.parse_message(_event_message())
    event = payload["events"][0]
    assert event["event_descriptor"]["event_id"] == "e1"
    assert event["event_descriptor"]["modification_number"] == 3
    assert event["active_period"]["duration"] == timedelta(minutes=30)
    interval = event["event_signals"][0]["intervals"][0]
    assert interval["signal_payload"] == 2.0
    assert interval["duration"] == timedelta(minutes=30)
    assert interval["dtstart"] == datetime(2026, 7, 1, 18, 0, tzinfo=UTC)


def test_empty_element_parses_to_none() -> None:
    # openleadr writes an empty <requestID xmlns="..."/>; 1.x adds its xmlns, 0.13 gives None.
    message = messaging.create_message(
        "oadrResponse",
        response={"response_code": 200, "response_description": "OK", "request_id": None},
        ven_id="ven1",
    )
    _, payload = xml_compat.parse_message(message)
    assert "request_id" in payload["response"]
    assert payload["response"]["request_id"] is None


def test_without_the_fix_xmltodict_1_breaks_openleadr() -> None:
    """Why the VEN parses with its own functions (flips with the installed xmltodict)."""
    messaging.xmltodict = xmltodict
    _, payload = messaging.parse_message(_registration_reply())
    broken = not isinstance(payload["requested_oadr_poll_freq"], timedelta)
    assert broken is XMLTODICT_1


def test_library_still_adds_xmlns_attributes_from_xmltodict_1() -> None:
    """What makes parse_xml necessary: once xmltodict stops it, openleadr's parser would do.

    1.x turns a text element that declares a namespace into ``{"@xmlns": ..., "#text": ...}``.
    """
    raw = xmltodict.parse(
        _registration_reply(), process_namespaces=True, namespaces=messaging.NAMESPACES
    )
    body = raw["oadrPayload"]["oadrSignedObject"]["oadrCreatedPartyRegistration"]
    duration = body["oadrRequestedOadrPollFreq"]["duration"]
    assert (isinstance(duration, dict) and "@xmlns" in duration) is XMLTODICT_1
    fixed = xml_compat.parse_xml(
        _registration_reply(), process_namespaces=True, namespaces=messaging.NAMESPACES
    )
    body = fixed["oadrPayload"]["oadrSignedObject"]["oadrCreatedPartyRegistration"]
    assert body["oadrRequestedOadrPollFreq"]["duration"] == "PT7S"


def test_library_still_parses_through_its_xmltodict_name() -> None:
    """The simulated VTN's fix replaces ``openleadr.messaging.xmltodict``: openleadr must use it."""
    lines, first = inspect.getsourcelines(messaging.parse_message)
    calls = [
        first + i
        for i, line in enumerate(lines)
        if "xmltodict.parse(data, process_namespaces=True, namespaces=NAMESPACES)" in line
    ]
    assert calls == [59]  # openleadr/messaging.py:59, as documented in xml_compat
    assert "utils.normalize_dict(message_payload)" in lines[61 - first]
    assert messaging.xmltodict is xmltodict or messaging.xmltodict.parse is openleadr_compat.parse


def test_library_still_parses_vtn_requests_with_parse_message() -> None:
    """The simulated VTN's fix relies on its request handler using ``messaging.parse_message``."""
    assert vtn_service.parse_message is messaging.parse_message
    source = inspect.getsource(vtn_service.VTNService.handler)
    assert "message_type, message_payload = parse_message(content)" in source


def test_library_still_forces_info_at_import() -> None:
    """Why the factory resets the "openleadr" logger level (openleadr/client.py:38)."""
    lines = inspect.getsource(openleadr_client).splitlines()
    assert lines[37] == "logger.setLevel(logging.INFO)"
    probe = "import logging, openleadr.client; print(logging.getLogger('openleadr').level)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == str(logging.INFO)


async def test_building_a_client_resets_the_logger_and_patches_nothing() -> None:
    """Nothing changes at import; ``create_client`` only gives the logger level back."""
    messaging.xmltodict = xmltodict
    logging.getLogger("openleadr").setLevel(logging.INFO)

    async def in_thread(job: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(job)

    settings = VenSettings(vtn_url="http://127.0.0.1:9/OpenADR2/Simple/2.0b", ven_name="ven")
    for _ in range(2):
        client = await create_client(settings, in_thread)
        await client.stop()
        assert messaging.xmltodict is xmltodict  # openleadr's parser is left as it is
        assert logging.getLogger("openleadr").level == logging.NOTSET


def test_the_simulated_vtn_parses_as_the_ven_does() -> None:
    """The VTN's own fix to openleadr's parser gives exactly what the VEN's parser gives."""
    messages = [_registration_reply(), _event_message()]
    openleadr_compat.install()
    openleadr_compat.install()
    assert [messaging.parse_message(m) for m in messages] == [
        xml_compat.parse_message(m) for m in messages
    ]
