"""openleadr parses messages whichever xmltodict is installed (0.13; 1.0.4 in the compat pass)."""

from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest
import xmltodict
from openleadr import messaging

from custom_components.loadshed_ven.openadr import xml_compat

pytestmark = pytest.mark.compat


@pytest.fixture(autouse=True)
def _restore_messaging_module() -> object:
    original = messaging.xmltodict
    yield
    messaging.xmltodict = original


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
    xml_compat.install()
    message_type, payload = messaging.parse_message(_registration_reply())
    assert message_type == "oadrCreatedPartyRegistration"
    # With the raw xmltodict 1.x tree this is a dict, and openleadr's client.run() fails.
    assert payload["requested_oadr_poll_freq"] == timedelta(seconds=7)
    assert payload["ven_id"] == "ven1"
    assert not any(key.startswith("@xmlns") for key in payload)


def test_event_parses_identically_to_xmltodict_013() -> None:
    xml_compat.install()
    _, payload = messaging.parse_message(_event_message())
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
    xml_compat.install()
    message = messaging.create_message(
        "oadrResponse",
        response={"response_code": 200, "response_description": "OK", "request_id": None},
        ven_id="ven1",
    )
    _, payload = messaging.parse_message(message)
    assert "request_id" in payload["response"]
    assert payload["response"]["request_id"] is None


def test_install_is_idempotent_and_leaves_xmltodict_alone() -> None:
    xml_compat.install()
    xml_compat.install()
    assert messaging.xmltodict.parse is not xmltodict.parse
    assert xmltodict.parse("<a>1</a>") == {"a": "1"}


def test_without_the_fix_xmltodict_1_breaks_openleadr() -> None:
    """Documents the break the fix exists for (the assertion flips with the installed version)."""
    messaging.xmltodict = xmltodict
    _, payload = messaging.parse_message(_registration_reply())
    broken = not isinstance(payload["requested_oadr_poll_freq"], timedelta)
    assert broken is (int(version("xmltodict").split(".")[0]) >= 1)
