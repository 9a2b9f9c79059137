"""Constants for loadshed_ven."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "loadshed_ven"
