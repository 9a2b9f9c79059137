"""Which SIMPLE levels shed, and which level the points follow for a signalled level."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ShedPolicy:
    """Which SIMPLE levels shed. Levels at or above ``shed_level`` shed; anything else is normal."""

    shed_level: int = 1
    normal_level: int = 0

    def __post_init__(self) -> None:
        """Refuse a policy that cannot be acted on."""
        if not 1 <= self.shed_level <= 3:
            raise ValueError("the shed level must be 1, 2 or 3")
        if not 0 <= self.normal_level < self.shed_level:
            raise ValueError("the normal level must be below the shed level")

    def sheds(self, level: int) -> bool:
        """True when ``level`` means "shed"."""
        return self.shed_level <= level <= 3

    def acting_level(self, level: int, current: int) -> int:
        """The level the points follow when the signal says ``level``.

        A shedding level is followed; the normal level and below release (0); a level between
        the normal level and the shed level (e.g. 1 with normal 0 and shed 2) changes nothing.
        """
        if self.sheds(level):
            return level
        if level <= self.normal_level:
            return 0
        return current
