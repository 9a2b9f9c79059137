"""Tests for loadshed_ven and its simulated building."""
