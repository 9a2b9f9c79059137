"""The demo against the simulated OpenADR 3.x VTN: ``scripts/demo --openadr 3``.

The same demo as with 2.0b (its config flow answered through Home Assistant's HTTP API), but the
entry is an OpenADR 3.x one: it logs in with the VTN's OAuth2 client credentials, sheds on a
SIMPLE event the control API adds, reports the meter to the VTN as the event asks, and
releases when the event is deleted (the 3.x cancel).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .test_demo_browser import LEVEL_1_VALUE, run_demo

pytestmark = pytest.mark.timeout(240)

BASE_IP = "127.68.0.2"
ROUTER_IP = "127.69.0.1"


def _until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_the_demo_runs_against_an_openadr_3_vtn(socket_enabled: None, tmp_path: Path) -> None:
    with run_demo(
        tmp_path, "--openadr", "3", "--building-base-ip", BASE_IP, "--router-ip", ROUTER_IP
    ) as demo:
        status = demo.control_api("GET", "/status")
        assert status["openadr"]["version"] == "3.1.0"
        assert "(OpenADR 3)" in demo.log.read_text()

        event = demo.control_api("POST", "/events", {"level": 1, "duration": 600})
        _until(lambda: demo.slot(BASE_IP) == LEVEL_1_VALUE, "the shed")
        _until(lambda: bool(demo.control_api("GET", "/reports")), "a DEMAND report")
        report = demo.control_api("GET", "/reports")[0]
        assert (report["measurement"], report["unit"]) == ("DEMAND", "KW")
        opts = demo.control_api("GET", "/opts")
        assert [o["opt_type"] for o in opts if o["event_id"] == event["event_id"]][:1] == ["optIn"]

        demo.control_api("POST", f"/events/{event['event_id']}/cancel")
        _until(lambda: demo.slot(BASE_IP) is None, "the release after the cancel")
