"""Check the integration against a newer Home Assistant release without installing it.

The release's wheel is downloaded without dependencies and read as source: every
``homeassistant`` name the integration uses must exist there, and the manifest
requirements must resolve together with the release's pins (pip's resolver, dry run).
Exit status: 0 fine or skipped (package index unreachable), 1 a problem, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ha_api_scan import Outcome, check_api
from ha_requirements import IndexUnreachable, check_requirements, fetch_wheel, latest_version
from ha_source import PY, HaSource
from ha_uses import collect_uses

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "loadshed_ven"
# Matches the `.venv*/` ignore rule, and stays out of the venv copy made by setup-compat.
CACHE = ROOT / ".venv-ha-latest"


def wheel_python(src: HaSource) -> str:
    """Lowest Python the release supports (Requires-Python), e.g. ``3.14.2``."""
    meta = next(iter(src.glob("homeassistant-*.dist-info/METADATA")), "")
    found = re.search(
        r"^Requires-Python:\s*>=\s*([\d.]+)", src.read(meta) or "" if meta else "", re.M
    )
    return found[1] if found else PY


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="release to check (default: the newest on the index)")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"wheel cache (default {CACHE})")
    parser.add_argument("--integration", type=Path, default=INTEGRATION, help="integration package")
    parser.add_argument("--no-requirements", action="store_true", help="skip the resolver check")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list every name found (ok lines)"
    )
    args = parser.parse_args(argv)
    try:
        version = args.version or latest_version()
        wheel = fetch_wheel(version, args.cache)
    except IndexUnreachable as err:
        print(f"skipped: cannot reach the package index ({err})")
        return 0
    except LookupError as err:
        print(f"error: {err}")
        return 2
    src = HaSource(wheel)
    python = wheel_python(src)
    uses = collect_uses(args.integration)
    print(f"Home Assistant {version} (Requires-Python >={python}), read from {wheel}")
    print(f"Integration {args.integration.name}: {len(uses)} uses of homeassistant names\n")
    print(
        "== API: each name must exist in this release"
        " (ok, MISSING, DYNAMIC, unchecked; ~ = weaker check)"
    )
    api = check_api(src, uses)
    shown = [line for line in api.lines if args.verbose or not line.startswith("  ok ")]
    print("\n".join(shown) or "  every name found")
    req = Outcome(["  skipped (--no-requirements)"])
    if not args.no_requirements:
        manifest = json.loads((args.integration / "manifest.json").read_text(encoding="utf-8"))
        try:
            req = check_requirements(src, list(manifest.get("requirements", [])), python)
        except IndexUnreachable as err:
            req = Outcome([f"  skipped: cannot reach the package index ({err})"])
    print("\n== Requirements (manifest.json) against this release's pins")
    print("\n".join(req.lines))
    problems, warnings = api.problems + req.problems, api.warnings + req.warnings
    verdict = "FAILED" if problems else "OK"
    print(f"\n{verdict}: HA {version}: {problems} problem(s), {warnings} warning(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
