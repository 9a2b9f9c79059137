"""Tests of the OpenADR adapter."""
