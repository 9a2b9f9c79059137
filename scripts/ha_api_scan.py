"""Resolve the integration's uses of ``homeassistant`` names in a release, and report them."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, replace

from ha_source import PY, Def, HaSource, is_ha
from ha_uses import Use


@dataclass
class Loc:
    """Where a dotted name ends up in the release, and how sure that is."""

    status: str  # ok | missing | dynamic (module __getattr__) | external | unverifiable
    where: str = ""  # homeassistant/x.py:123
    note: str = ""
    deprecated: str = ""
    weak: bool = False
    d: Def | None = None
    module: str = ""
    name: str = ""


def _external(module: str, attrs: tuple[str, ...]) -> Loc:
    """A name defined outside ``homeassistant``: checked only when it is in the stdlib."""
    dotted = ".".join((module, *attrs))
    if module.partition(".")[0] not in sys.stdlib_module_names:
        return Loc("external", note=f"defined outside homeassistant ({dotted})")
    try:
        obj: object = importlib.import_module(module)
    except ImportError:
        return Loc("external", note=f"stdlib module {module} not importable here")
    for attr in attrs:
        if not hasattr(obj, attr):
            return Loc(
                "missing",
                note=f"{dotted} not in the stdlib of Python {PY}",
            )
        obj = getattr(obj, attr)
    return Loc("ok", note=f"stdlib {dotted}", module=module, name=".".join(attrs))


def locate(src: HaSource, module: str, attrs: tuple[str, ...], depth: int = 0) -> Loc:  # noqa: PLR0911
    """Resolve ``module`` + ``attrs`` in the release, following re-exports and base classes."""
    info = src.module(module)
    if info is None:
        return (
            _external(module, attrs)
            if not is_ha(module)
            else Loc("missing", note=f"module {module} not found")
        )
    weak = info.parse == "regex"
    for i, name in enumerate(attrs):
        d = info.defs.get(name)
        if d is None:
            sub = src.module(f"{info.dotted}.{name}")
            star = next(
                (
                    s
                    for s in info.stars
                    if depth < 20 and locate(src, s, (name,), depth + 1).status == "ok"
                ),
                "",
            )
            if sub is not None and not star:
                info, weak = sub, weak or sub.parse == "regex"
                continue
            if star:
                return replace(locate(src, star, attrs[i:], depth + 1), weak=weak)
            if name in info.deprecated:
                return Loc(
                    "dynamic",
                    info.rel,
                    "served by the module's __getattr__",
                    info.deprecated[name],
                    weak,
                )
            if info.has_getattr:
                return Loc(
                    "dynamic",
                    info.rel,
                    f"not defined; {info.rel} has a module __getattr__",
                    weak=weak,
                )
            return Loc("missing", info.rel, f"{name} not defined in {info.rel}", weak=weak)
        rest = attrs[i + 1 :]
        if d.kind == "import" and depth < 20:
            tmod, tname = d.target
            target = ((tname,) if tname else ()) + rest
            if not is_ha(tmod):
                return replace(_external(tmod, target), weak=weak)
            found = locate(src, tmod, target, depth + 1)
            return replace(found, weak=weak or found.weak)
        loc = Loc(
            "ok",
            f"{info.rel}:{d.line}",
            deprecated=d.deprecated,
            weak=weak,
            d=d,
            module=info.dotted,
            name=name,
        )
        if d.kind == "class" and rest:
            member = _member(src, loc, rest[0], set())
            if len(rest) > 1 and member.status == "ok":
                member.note = f"attributes after {rest[0]} not checked"
            return member
        if rest:
            loc.note = f"attributes after {name} not checked ({d.kind})"
        return loc
    return Loc("ok", info.rel, weak=weak, module=info.dotted)


def _member(src: HaSource, cls: Loc, member: str, seen: set[tuple[str, str]]) -> Loc:
    """Find ``member`` on a release class or on its bases (method resolution, depth first)."""
    d = cls.d or Def("class", 0)  # callers pass classes; an empty one keeps the types simple
    seen.add((cls.module, cls.name))
    info = src.module(cls.module)
    rel = info.rel if info else cls.where
    if member in d.members:
        m = d.members[member]
        where = f"{rel}:{m.line}" if m.line else cls.where
        return Loc(
            "ok", where, deprecated=m.deprecated, weak=cls.weak, d=m, module=cls.module, name=member
        )
    unknown = ""
    for base in d.bases:
        if base == "object":
            continue
        found = locate(src, cls.module, tuple(base.split(".")))
        if found.status == "ok" and found.d is not None and found.d.kind == "class":
            if (found.module, found.name) in seen:
                continue
            sub = _member(src, found, member, seen)
        elif found.status == "ok" and found.module and not is_ha(found.module):
            sub = _external(found.module, (*found.name.split("."), member))
        elif found.status in {"missing", "dynamic"} and "." not in base:
            sub = _external("builtins", (base, member))  # dict, Exception, ...
        else:
            why = found.note or found.status
            sub = Loc("unverifiable", note=f"base {base} of {cls.name} cannot be checked ({why})")
        if sub.status == "ok":
            return replace(sub, weak=sub.weak or cls.weak)
        if sub.status != "missing":
            unknown = sub.note or f"base {base} of {cls.name} not resolvable"
    if hasattr(object, member):
        return Loc("ok", note="inherited from object")
    if unknown:
        return Loc("unverifiable", cls.where, unknown, weak=cls.weak)
    return Loc(
        "missing",
        cls.where,
        f"{cls.name}.{member} not defined in {cls.name} or its bases",
        weak=cls.weak,
    )


@dataclass
class Outcome:
    """Report lines, and the counts that decide the exit status."""

    lines: list[str] = field(default_factory=list)
    problems: int = 0
    warnings: int = 0


_RANK = {"ok": 0, "dynamic": 1, "external": 2, "unverifiable": 3, "missing": 4}
_TAG = {
    "ok": "ok",
    "dynamic": "DYNAMIC",
    "external": "external",
    "unverifiable": "unchecked",
    "missing": "MISSING",
}


def check_api(src: HaSource, uses: list[Use]) -> Outcome:
    """Resolve every use in the release; one line per distinct name."""
    out = Outcome()
    groups: dict[tuple[str, tuple[str, ...]], list[Use]] = {}
    for use in uses:
        groups.setdefault((use.module, use.attrs), []).append(use)
    for (module, attrs), unsorted in sorted(
        groups.items(), key=lambda kv: ".".join((kv[0][0], *kv[0][1]))
    ):
        group = sorted(unsorted, key=lambda u: (u.file, u.line))
        paths = [(module, attrs), *group[0].also]
        loc = min((locate(src, m, a) for m, a in paths), key=lambda x: _RANK[x.status])
        at = ", ".join(f"{u.file}:{u.line}" for u in group[:3]) + (
            f" +{len(group) - 3}" if len(group) > 3 else ""
        )
        tag = _TAG[loc.status] + ("~" if loc.weak else "")
        line = f"  {tag:<10} {'.'.join((module, *attrs))}"
        line += f"  [{loc.where}]" if loc.where and loc.status == "ok" else ""
        out.lines.append(f"{line}  <- {at}" + (f"  ({loc.note})" if loc.note else ""))
        out.problems += loc.status == "missing"
        out.warnings += loc.status == "dynamic" and not loc.deprecated
        if loc.deprecated:
            out.warnings += 1
            out.lines.append(f"  {'WARNING':<10} deprecated in this release: {loc.deprecated}")
        if loc.d is not None and loc.d.reports:
            out.lines.append(
                f"  {'note':<10} it calls report_usage ({loc.d.reports}): check that path"
            )
    for info in src.weak_modules():
        if info.parse == "regex":
            out.lines.append(
                f"  weaker: {info.rel} has syntax Python {PY} cannot "
                "parse: names found by pattern, class members by indentation (marked ~)"
            )
        else:
            out.lines.append(
                f"  info: {info.rel} uses PEP 758 `except A, B:`; parsed after adding parentheses"
            )
    return out
