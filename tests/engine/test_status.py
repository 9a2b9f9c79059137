"""The building's status as one OpenADR resource, from its points' states."""

from __future__ import annotations

from dataclasses import replace

import pytest

from custom_components.loadshed_ven.engine.overrides import PointState, PointStatus
from custom_components.loadshed_ven.engine.points import OverridePoint
from custom_components.loadshed_ven.engine.status import VenStatus, ven_status

POINT = OverridePoint(
    address="10.0.0.2", object_type="analog-value", instance=302, priority=10, values=(78, 80, 82)
)


def _state(status: PointStatus, *, operator_released: bool = False) -> PointState:
    return replace(PointState(point=POINT), status=status, operator_released=operator_released)


def test_a_shed_building_is_online_and_curtailed() -> None:
    states = [_state(PointStatus.HELD), _state(PointStatus.FAILED), _state(PointStatus.RELEASED)]
    status = ven_status(states, level=2, opted_out=False)
    assert status == VenStatus(online=True, manual_override=False, level=2, curtailed=True)
    assert status.operating_state == "RUNNING_CURTAILED"


def test_an_owned_point_is_curtailed_too_and_a_pending_one_not_yet() -> None:
    assert ven_status([_state(PointStatus.OWNED)], level=1, opted_out=False).curtailed
    assert not ven_status([_state(PointStatus.PENDING)], level=1, opted_out=False).curtailed


def test_no_point_answering_is_offline() -> None:
    status = ven_status([_state(PointStatus.FAILED)] * 3, level=1, opted_out=False)
    assert not status.online
    assert status.operating_state == "SGD_ERROR_CONDITION"


def test_a_building_without_points_is_online_and_normal() -> None:
    status = ven_status([], level=0, opted_out=False)
    assert status == VenStatus(online=True, manual_override=False, level=0, curtailed=False)
    assert status.operating_state == "RUNNING_NORMAL"


@pytest.mark.parametrize(
    ("released_by_operator", "opted_out"), [(True, False), (False, True), (True, True)]
)
def test_an_operator_release_or_an_opt_out_is_a_manual_override(
    released_by_operator: bool, opted_out: bool
) -> None:
    states = [_state(PointStatus.RELEASED, operator_released=released_by_operator)]
    status = ven_status(states, level=1, opted_out=opted_out)
    assert status.manual_override
    assert status.operating_state == "RUNNING_OPTED_OUT"


def test_a_negative_level_reads_as_none() -> None:
    assert ven_status([], level=-1, opted_out=False).level == 0
