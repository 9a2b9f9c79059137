"""End-to-end tests of the demo in headless Chromium."""
