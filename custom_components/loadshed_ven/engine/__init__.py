"""Protocol-free decision logic: event schedules and override point definitions.

Nothing in this package imports Home Assistant or a protocol library, so every rule
here can be tested as plain functions.
"""
