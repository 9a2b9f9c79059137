"""Tests for the protocol-free engine."""
