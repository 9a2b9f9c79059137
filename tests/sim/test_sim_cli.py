"""``python -m sim`` as a person runs it: a real process, driven through its command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(control: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", "--control", control, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def running_building(socket_enabled: None) -> Iterator[tuple[subprocess.Popen[str], str, dict]]:
    """A small building in its own process, on addresses no other test uses."""
    control_port = _free_tcp_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim",
            "--devices",
            "3",
            "--routed",
            "1",
            "--base-ip",
            "127.78.0.2",
            "--router-ip",
            "127.78.1.1",
            "--vtn-port",
            str(_free_tcp_port()),
            "--meter-port",
            str(_free_tcp_port()),
            "--control-port",
            str(control_port),
            "--poll",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Simulated building running"):
            break
    else:
        proc.kill()
        pytest.fail("the building did not start in time")
    if proc.poll() is not None:
        pytest.fail(
            f"python -m sim exited: {''.join(lines)} {proc.stderr.read() if proc.stderr else ''}"
        )
    endpoints = json.loads("".join(lines[:-1]))
    try:
        yield proc, endpoints["control"], endpoints
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_building_prints_every_endpoint(running_building: tuple) -> None:
    _, _, endpoints = running_building
    assert endpoints["vtn_url"].startswith("http://127.0.0.1:")
    assert endpoints["vtn_url"].endswith("/OpenADR2/Simple/2.0b")
    assert endpoints["meter"]["host"] == "127.0.0.1"
    assert endpoints["meter"]["input_register"] == 17
    assert endpoints["bacnet"]["ip_devices"] == ["127.78.0.2", "127.78.0.3", "127.78.0.4"]
    assert endpoints["bacnet"]["routed_devices"] == ["12345:2"]
    assert endpoints["control"].startswith("http://127.0.0.1:")


def test_event_lifecycle_through_the_command_line(running_building: tuple) -> None:
    _, control, _ = running_building

    added = _cli(control, "event", "--level", "1", "--duration", "5m")
    assert added.returncode == 0, added.stderr
    event_id = json.loads(added.stdout)["event_id"]

    listed = json.loads(_cli(control, "list").stdout)
    (event,) = [e for e in listed if e["event_id"] == event_id]
    assert event["modification_number"] == 0

    modified = _cli(control, "modify", event_id, "--level", "2", "--duration", "10m")
    assert modified.returncode == 0, modified.stderr
    assert json.loads(modified.stdout)["modification_number"] == 1

    assert _cli(control, "cancel", event_id).returncode == 0
    (event,) = [e for e in json.loads(_cli(control, "list").stdout) if e["event_id"] == event_id]
    assert event["status"] == "cancelled"

    assert _cli(control, "remove", event_id).returncode == 0
    (event,) = [e for e in json.loads(_cli(control, "list").stdout) if e["event_id"] == event_id]
    assert event["status"] == "removed"  # still listed here, no longer served to the VEN


def test_bad_input_is_refused_with_a_message(running_building: tuple) -> None:
    _, control, _ = running_building
    result = _cli(control, "event", "--level", "1", "--duration", "ten minutes")
    assert result.returncode == 2
    assert "not a duration" in result.stderr
    result = _cli(control, "cancel", "no-such-event")
    assert result.returncode == 1
    assert "error" in result.stderr


def test_device_inspection_and_fault_injection(running_building: tuple) -> None:
    _, control, _ = running_building
    shown = json.loads(_cli(control, "device", "127.78.0.3").stdout)
    setpoint = shown["objects"]["analog-value,302"]
    assert setpoint["present_value"] == 72.0
    assert setpoint["priority_array"] == [None] * 16

    changed = json.loads(
        _cli(control, "device", "127.78.0.3", "--offline", "--latency", "0.05").stdout
    )
    assert changed == {"address": "127.78.0.3", "offline": True, "latency": 0.05}
    denied = json.loads(
        _cli(control, "device", "127.78.0.3", "--deny-writes", "--duplicate-window", "0").stdout
    )
    assert denied["deny_writes"] == sorted(shown["objects"])
    assert denied["duplicate_window"] == 0
    partly = json.loads(
        _cli(control, "device", "127.78.0.3", "--deny-writes", "analog-value,302").stdout
    )
    assert partly["deny_writes"] == ["analog-value,302"]
    allowed = json.loads(_cli(control, "device", "127.78.0.3", "--allow-writes").stdout)
    assert allowed["deny_writes"] == []
    assert json.loads(_cli(control, "device", "12345:2").stdout)["address"] == "12345:2"
    assert _cli(control, "device", "127.78.9.9").returncode == 1


def test_ctrl_c_stops_cleanly(running_building: tuple) -> None:
    proc, control, _ = running_building
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    # Nothing listens any more.
    assert _cli(control, "status").returncode == 1


def test_cli_without_a_running_building_says_so(socket_enabled: None) -> None:
    result = _cli(f"http://127.0.0.1:{_free_tcp_port()}", "list")
    assert result.returncode == 1
    assert "Is `python -m sim` running?" in result.stderr
