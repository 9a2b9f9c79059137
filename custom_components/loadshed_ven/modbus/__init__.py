"""Modbus TCP adapter for the building's main meter (pymodbus >= 3.8.3, < 4)."""
