"""A simulated building on loopback: an OpenADR VTN, BACnet controllers and a Modbus meter.

Used by the test suite (as a library) and by people (``python -m sim``). Every socket
binds and sends to 127.0.0.0/8 only.
"""
