"""Tests of the OpenADR 3.x VEN adapter."""
