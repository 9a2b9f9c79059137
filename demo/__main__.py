"""``python -m demo``: see :mod:`demo` and ``python -m demo --help``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from .hass_config import ConfigDirError
from .options import parse_args
from .runner import DemoError, run


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    options = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.WARNING)
    try:
        return asyncio.run(run(options))
    except (ConfigDirError, DemoError, OSError) as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 130


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
