"""Integration tests: the loaded config entry against the simulated building."""
