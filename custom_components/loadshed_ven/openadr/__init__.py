"""OpenADR 2.0b adapter: everything that knows about openleadr and its quirks lives here."""
