"""One-command demo: the simulated building and a real Home Assistant running loadshed_ven.

``python -m demo`` (or ``scripts/demo``) starts the simulated building on loopback, starts Home
Assistant with only the integrations the demo needs, onboards it with a demo user, adds
loadshed_ven through its real config flow, saves the operator dashboard and prints where to
log in. Ctrl-C stops Home Assistant (which releases every override) and then the building.
With ``--commissioning`` it adds a BBMD site and a BACnet/IP router site to the building and
leaves loadshed_ven out: it prints what to type to commission the building in the UI instead.
"""
