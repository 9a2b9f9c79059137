"""Tests of the Modbus meter adapter."""
