"""Package index side: our requirements against a release's pins, and the release's wheel.

pip's resolver runs as a dry run into a fresh target, so nothing is installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ha_api_scan import Outcome
from ha_source import HaSource
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Packages always compared with core pins, besides everything our requirements pull in.
WATCH = ("xmltodict", "pymodbus", "aiohttp", "cryptography", "lxml", "signxml", "apscheduler")
PIP_NET = ("--retries", "2", "--timeout", "30")
NETWORK_ERROR = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|ProxyError|SSLError"
)


@dataclass(frozen=True)
class KnownConflict:
    """A resolver conflict that is understood and handled, with the reason."""

    package: str
    dependent: str
    reason: str


KNOWN_CONFLICTS = (
    KnownConflict(
        "xmltodict",
        "openleadr",
        "openleadr 0.5.36 pins xmltodict==0.13.0 while HA 2026.x core (rest, fritz, ...) pins "
        "1.0.x. custom_components/loadshed_ven/openadr/xml_compat.py makes openleadr work with "
        "xmltodict 1.0.x at runtime; HA installs our requirement once, then the core pin wins.",
    ),
)


class IndexUnreachable(Exception):  # noqa: N818 - a condition, not a failure of this program
    """The package index could not be reached."""


def _pip(*args: str) -> tuple[int, str]:
    """Run this interpreter's pip; raise IndexUnreachable on network errors."""
    cmd = [sys.executable, "-m", "pip", *args, *PIP_NET]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    lines = (proc.stdout + proc.stderr).splitlines()
    output = "\n".join(line for line in lines if "is ignored: it is neither a file" not in line)
    if proc.returncode and (hit := NETWORK_ERROR.search(output)):
        host = re.search(r"host='([^']+)'", output)
        raise IndexUnreachable(f"pip {args[0]}: {hit[0]}" + (f", host {host[1]}" if host else ""))
    return proc.returncode, output


def resolve(reqs: list[str], constraints: Path, python: str) -> tuple[dict[str, str] | None, str]:
    """Run pip's resolver (dry run, fresh target): {name: version}, or None and pip's output."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.json")
        rc, output = _pip(
            "install", "--dry-run", "--ignore-installed", "--report", str(report),
            "--python-version", python, "--only-binary=:all:", "--target", str(Path(tmp, "t")),
            "--constraint", str(constraints), *reqs,
        )  # fmt: skip
        if rc:
            return None, output
        data = json.loads(report.read_text(encoding="utf-8"))
    return {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]
    }, ""


def parse_conflict(output: str) -> tuple[list[str], list[tuple[str, str]]] | None:
    """Parse pip's "conflict is caused by" block: (user-requested specs, [(dependent, spec)])."""
    if "conflict is caused by" not in output:
        return None
    requested = re.findall(r"^\s*The user requested (?:\(constraint\) )?(\S+)", output, re.M)
    depends = re.findall(r"^\s*([\w.-]+) \S+ depends on (.+?)\s*$", output, re.M)
    return requested, depends


def _name(spec: str) -> str:
    try:
        return canonicalize_name(Requirement(spec).name)
    except InvalidRequirement:
        return spec


def known_conflict(output: str) -> KnownConflict | None:
    """The allowlist entry that explains this resolver failure completely, if any."""
    parsed = parse_conflict(output)
    if not parsed or not parsed[1]:
        return None
    requested, depends = parsed
    for known in KNOWN_CONFLICTS:
        deps_ok = all(
            canonicalize_name(d) == known.dependent and _name(s) == known.package
            for d, s in depends
        )
        if deps_ok and all(_name(s) in {known.package, known.dependent} for s in requested):
            return known
    return None


def _cause(output: str) -> str:
    parsed = parse_conflict(output)
    if parsed:
        return "; ".join(
            [*(f"requested {s}" for s in parsed[0]), *(f"{d} needs {s}" for d, s in parsed[1])]
        )
    errors = [x.removeprefix("ERROR: ") for x in output.splitlines() if x.startswith("ERROR")]
    first = (errors or output.splitlines()[-1:] or ["pip failed"])[0]
    return re.sub(r" \(from versions: [^)]*\)", "", first)[:300]


def core_pins(src: HaSource) -> dict[str, dict[str, list[str]]]:
    """Requirements of the release's core integrations: {package: {spec: [domains]}}."""
    pins: dict[str, dict[str, list[str]]] = {}
    for rel in src.glob("homeassistant/components/*/manifest.json"):
        manifest = json.loads(src.read(rel) or "{}")
        for spec in manifest.get("requirements", []):
            pins.setdefault(_name(spec), {}).setdefault(spec, []).append(
                manifest.get("domain", rel)
            )
    return pins


def check_requirements(src: HaSource, ours: list[str], python: str) -> Outcome:
    """Resolve our requirements with the release's constraints, then with each core pin."""
    installer = "uv pip" if '"uv"' in (src.read("homeassistant/util/package.py") or "") else "pip"
    out = Outcome(
        [
            "  How HA installs them (homeassistant/util/package.py): on first setup, one",
            f"  requirement at a time unless already satisfied, with `{installer} install <req>",
            "  --upgrade --constraint homeassistant/package_constraints.txt` (+ index options).",
            "  Core integrations install their own pins the same way later (or ship them",
            "  preinstalled in container images), so the last install of a shared package wins.",
            f"  Resolved here by pip for Python {python}, wheels for this machine's platform.",
            f"  ours: {', '.join(ours)}",
        ]
    )
    text = src.read("homeassistant/package_constraints.txt") or ""
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp, "package_constraints.txt")
        constraints.write_text(text, encoding="utf-8")
        resolved, output = resolve(ours, constraints, python)
        if resolved is None:
            out.problems += 1
            out.lines.append(f"  CONFLICT   ours + package_constraints.txt: {_cause(output)}")
            return out
        ours_names = {_name(r) for r in ours}
        shown = [f"{n}=={v}" for n, v in sorted(resolved.items()) if n in ours_names | set(WATCH)]
        out.lines.append(f"  ok         ours + package_constraints.txt -> {', '.join(shown)}")
        pinned = {_name(x) for x in text.splitlines() if x.strip() and not x.startswith("#")}
        if hits := sorted(set(resolved) & pinned):
            out.lines.append(
                f"  info       package_constraints.txt pins in our tree: {', '.join(hits)}"
            )
        pins = core_pins(src)
        for name in sorted((set(resolved) | {canonicalize_name(w) for w in WATCH}) & set(pins)):
            for spec, domains in sorted(pins[name].items()):
                who = ", ".join(domains[:4]) + (", ..." if len(domains) > 4 else "")
                ok, output = resolve([*ours, spec], constraints, python)
                known = None if ok else known_conflict(output)
                if ok:
                    out.lines.append(f"  ok         core pin {spec} ({who})")
                elif known:
                    out.warnings += 1
                    out.lines.append(f"  KNOWN      core pin {spec} ({who}): {_cause(output)}")
                    out.lines.append(f"             known, handled by xml_compat: {known.reason}")
                else:
                    out.problems += 1
                    out.lines.append(f"  CONFLICT   core pin {spec} ({who}): {_cause(output)}")
    return out


def latest_version() -> str:
    """Newest homeassistant release on the index (whatever Python it requires)."""
    rc, output = _pip("index", "versions", "--ignore-requires-python", "homeassistant")
    if found := re.search(r"^homeassistant \(([^)]+)\)", output, re.M):
        return found[1]
    raise IndexUnreachable(f"pip index versions failed ({rc}): {_cause(output)}"[:200])


def fetch_wheel(version: str, cache: Path, keep: int = 3) -> Path:
    """The release's wheel from the cache, else downloaded without dependencies."""
    if cached := sorted(cache.glob(f"homeassistant-{version}-*.whl")):
        return cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    args = ("download", "--no-deps", "--only-binary=:all:", "--ignore-requires-python", "--dest")
    rc, output = _pip(*args, str(cache), f"homeassistant=={version}")
    wheels = sorted(
        cache.glob("homeassistant-*.whl"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in wheels[keep:]:
        old.unlink()
    if rc or not (found := sorted(cache.glob(f"homeassistant-{version}-*.whl"))):
        raise LookupError(f"cannot download homeassistant=={version}: {_cause(output)}")
    return found[0]
