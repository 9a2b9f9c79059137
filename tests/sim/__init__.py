"""Tests of the simulated building."""
