"""Points and a clock shared by the ledger record tests."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.loadshed_ven.engine.points import OverridePoint

NOW = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)

ANALOG = OverridePoint(
    address="127.0.0.2", object_type="analog-value", instance=302, values=(78.0, 80.0, 82.0)
)
BINARY = OverridePoint(
    address="12345:2", object_type="binary-value", instance=1, priority=12, values=("active",) * 3
)
MULTI = OverridePoint(
    address="127.0.0.3:47809", object_type="multi-state-value", instance=1, values=(2, 3, 3)
)
