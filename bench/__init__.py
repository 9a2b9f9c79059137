"""Shed and release benchmark against the simulated building (``scripts/bench``)."""
