"""loadshed_ven: an OpenADR 2.0b VEN that sheds building load through BACnet overrides."""
