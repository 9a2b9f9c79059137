"""Shared fixtures.

Importing the integration here makes HA's loader find this checkout's
``custom_components`` rather than the test harness's own (see the docs on testing).
"""

from __future__ import annotations

import pytest

from custom_components.loadshed_ven.const import DOMAIN  # noqa: F401

pytest_plugins = ["tests.vtn_fixtures"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load custom integrations in every test that runs Home Assistant.

    Tests of the simulator and of the HA-free engine do not start HA at all.
    """
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")
