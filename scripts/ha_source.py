"""Read the ``homeassistant`` package of one release as source, without importing it.

Each module's top-level names, class members, re-exports and deprecation markers are
parsed; a file with syntax newer than this interpreter is rewritten (PEP 758) or, failing
that, scanned by pattern.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
# HA's usual module __getattr__ serves only `_DEPRECATED_<name>` constants; others stay missing.
DEPRECATION_GETATTR = re.compile(
    r"^__getattr__\s*=\s*(?:partial\(\s*)?check_if_deprecated_constant", re.M
)
# PEP 758 (Python 3.14): `except A, B:` without parentheses; Python 3.13's parser rejects it.
PEP758 = re.compile(
    r"^(?P<h>[ \t]*except\*?[ \t]+)(?P<t>[^(\s:#][^:#\n]*?,[^:#\n]*?)(?P<c>[ \t]*:)", re.M
)


def is_ha(module: str) -> bool:
    """Whether ``module`` is ``homeassistant`` or one of its submodules."""
    return module == "homeassistant" or module.startswith("homeassistant.")


@dataclass
class Def:
    """A name defined in a module or class body of the release."""

    kind: str  # class | function | value | import
    line: int
    target: tuple[str, str] = ("", "")  # imports: (module, name); name "" = the module itself
    bases: list[str] = field(default_factory=list)
    members: dict[str, Def] = field(default_factory=dict)
    deprecated: str = ""
    reports: str = ""  # a report_usage call inside: some argument or path is deprecated


@dataclass
class ModuleInfo:
    """Top-level names of one release module; ``parse`` says how reliable they are."""

    dotted: str
    rel: str
    defs: dict[str, Def]
    parse: str = "ast"  # ast | rewritten (PEP 758 fixed up, full checks) | regex (weaker)
    deprecated: dict[str, str] = field(default_factory=dict)  # via _DEPRECATED_<name>
    has_getattr: bool = False
    stars: list[str] = field(default_factory=list)


def _call_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    node = node.value if isinstance(node, ast.Subscript) else node
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _deprecation(node: ast.expr) -> str:
    """``deprecated_function("x", breaks_in_ha_version="2027.2")`` -> readable text, else ""."""
    name = _call_name(node)
    if not name.lower().startswith("deprecated"):
        return ""
    texts = [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    breaks = next((t for t in texts if re.fullmatch(r"\d{4}\.\d+(\.\d+)?", t)), "")
    return name + (f", breaks in {breaks}" if breaks else "")


def _def_of(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Def:
    dep = next((d for d in map(_deprecation, node.decorator_list) if d), "")
    if isinstance(node, ast.ClassDef):
        members = class_members(node)
        for kw in node.keywords:  # metaclass=EnumWithDeprecatedMembers, deprecated={...}
            if kw.arg == "deprecated" and isinstance(kw.value, ast.Dict):
                for key in kw.value.keys:
                    if isinstance(key, ast.Constant) and key.value in members:
                        members[key.value].deprecated = "deprecated enum member"
        bases = [ast.unparse(b.value if isinstance(b, ast.Subscript) else b) for b in node.bases]
        return Def("class", node.lineno, bases=bases, members=members, deprecated=dep)
    calls = (
        n for n in ast.walk(node) if isinstance(n, ast.Call) and _call_name(n) == "report_usage"
    )
    report = ""
    if call := next(calls, None):
        what = ast.unparse(call.args[0]) if call.args else ""
        breaks = [ast.unparse(k.value) for k in call.keywords if k.arg == "breaks_in_ha_version"]
        report = f"line {call.lineno}: {what}" + (f", breaks in {breaks[0]}" if breaks else "")
    return Def("function", node.lineno, deprecated=dep, reports=report)


def _flat(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements of a body, including those inside if/try/with blocks (not functions)."""
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        for name in ("body", "orelse", "finalbody", "handlers"):
            inner = (
                getattr(stmt, name, None) if isinstance(stmt, ast.If | ast.Try | ast.With) else None
            )
            for sub in inner or []:
                out.extend(_flat(sub.body if isinstance(sub, ast.ExceptHandler) else [sub]))
    return out


def class_members(node: ast.ClassDef) -> dict[str, Def]:
    """Names a class body defines: methods, nested classes, assignments, ``self.x = ...``."""
    members: dict[str, Def] = {}
    for stmt in _flat(node.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members[stmt.name] = _def_of(stmt)
        for target, value in _assignments(stmt):
            members[target] = Def("value", stmt.lineno, deprecated=_deprecation(value))
            if target == "__slots__":
                for elt in getattr(value, "elts", []):
                    if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                        members.setdefault(elt.value, Def("value", stmt.lineno))
    for sub in ast.walk(node):  # self.x = ... in methods
        if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):  # noqa: SIM102
            if isinstance(sub.value, ast.Name) and sub.value.id == "self":
                members.setdefault(sub.attr, Def("value", sub.lineno))
    return members


def _assignments(stmt: ast.stmt) -> list[tuple[str, ast.expr]]:
    value: ast.expr = getattr(stmt, "value", None) or ast.Constant(None)
    if isinstance(stmt, ast.Assign):
        return [(t.id, value) for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, value)]
    if isinstance(stmt, ast.TypeAlias) and isinstance(stmt.name, ast.Name):
        return [(stmt.name.id, value)]
    return []


def parse_module(dotted: str, rel: str, text: str) -> ModuleInfo:
    """Top-level names of a module, tolerating syntax newer than this interpreter."""
    try:
        tree, how = ast.parse(text), "ast"
    except SyntaxError:
        try:
            tree, how = ast.parse(PEP758.sub(r"\g<h>(\g<t>)\g<c>", text)), "rewritten"
        except SyntaxError:
            return _regex_module(dotted, rel, text)
    info = ModuleInfo(dotted, rel, {}, how)
    package = dotted if rel.endswith("__init__.py") else dotted.rpartition(".")[0]
    for stmt in _flat(tree.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            info.defs[stmt.name] = _def_of(stmt)
        elif isinstance(stmt, ast.Import):
            for a in stmt.names:
                local = a.asname or a.name.split(".")[0]
                info.defs[local] = Def("import", stmt.lineno, (a.name if a.asname else local, ""))
        elif isinstance(stmt, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - stmt.level + 1]) if stmt.level else ""
            mod = ".".join(p for p in (base, stmt.module or "") if p)
            for a in stmt.names:
                if a.name == "*":
                    info.stars.append(mod)
                else:  # `from . import sub` inside a package's __init__ names a submodule
                    target = (f"{mod}.{a.name}", "") if mod == dotted else (mod, a.name)
                    info.defs[a.asname or a.name] = Def("import", stmt.lineno, target)
        for var, value in _assignments(stmt):
            info.defs[var] = Def("value", stmt.lineno, deprecated=_deprecation(value))
            if var.startswith("_DEPRECATED_") and info.defs[var].deprecated:
                info.deprecated[var.removeprefix("_DEPRECATED_")] = info.defs[var].deprecated
    info.has_getattr = "__getattr__" in info.defs and not DEPRECATION_GETATTR.search(text)
    return info


def _regex_module(dotted: str, rel: str, text: str) -> ModuleInfo:
    """Fallback for files this Python cannot parse: top-level definitions found by pattern."""
    info = ModuleInfo(dotted, rel, {}, "regex")

    def line(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    for m in re.finditer(r"^(?:async[ \t]+)?def[ \t]+(\w+)", text, re.M):
        info.defs[m[1]] = Def("function", line(m.start()))
    for m in re.finditer(r"^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", text, re.M):
        info.defs.setdefault(m[1], Def("value", line(m.start())))
    for m in re.finditer(r"^from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)", text, re.M):
        for item in re.split(r"[,\s()]+(?![ \t]*as\b)", m[2]):
            name, _, alias = item.strip().partition(" as ")
            if name and name != "*" and re.fullmatch(r"\w+", name):
                target = m[1] if not m[1].startswith(".") else _absolute(dotted, rel, m[1])
                info.defs[alias.strip() or name] = Def("import", line(m.start()), (target, name))
    for m in re.finditer(r"^class[ \t]+(\w+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?[ \t]*:", text, re.M):
        end = re.search(r"^(?=[^\s#)\]])", text[m.end() :], re.M)
        block = text[m.end() : m.end() + end.start() if end else len(text)]
        members = {
            n: Def("value", 0) for n in re.findall(r"self\.(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", block)
        }
        members |= {
            n: Def("value", 0) for n in re.findall(r"^[ \t]{4}(\w+)[ \t]*[:=]", block, re.M)
        }
        members |= {
            n: Def("function", 0)
            for n in re.findall(r"^[ \t]{4}(?:async[ \t]+)?def[ \t]+(\w+)", block, re.M)
        }
        bases = [
            re.sub(r"\[.*", "", b).strip()
            for b in (m[2] or "").split(",")
            if b.strip() and "=" not in b
        ]
        info.defs[m[1]] = Def("class", line(m.start()), bases=bases, members=members)
    for m in re.finditer(r"^_DEPRECATED_(\w+)[ \t]*=[ \t]*(Deprecated\w*)", text, re.M):
        info.deprecated[m[1]] = m[2]
    for m in re.finditer(
        r"^@(deprecated\w*).*\n(?:@.*\n)*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", text, re.M
    ):
        if m[2] in info.defs:
            info.defs[m[2]].deprecated = m[1]
    info.has_getattr = "__getattr__" in info.defs and not DEPRECATION_GETATTR.search(text)
    return info


def _absolute(dotted: str, rel: str, module: str) -> str:
    level = len(module) - len(module.lstrip("."))
    parts = (dotted if rel.endswith("__init__.py") else dotted.rpartition(".")[0]).split(".")
    return ".".join([*parts[: len(parts) - level + 1], *filter(None, [module.lstrip(".")])])


class HaSource:
    """The ``homeassistant`` package of one release: a wheel file or an unpacked tree."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self._zip = zipfile.ZipFile(location) if location.is_file() else None
        self._names = set(self._zip.namelist()) if self._zip else set()
        self._modules: dict[str, ModuleInfo | None] = {}

    def read(self, rel: str) -> str | None:
        """Text of a file inside the release, or None."""
        if self._zip is not None:
            return self._zip.read(rel).decode("utf-8") if rel in self._names else None
        path = self.location / rel
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def glob(self, pattern: str) -> list[str]:
        """Paths inside the release matching a glob pattern."""
        if self._zip is not None:
            return sorted(n for n in self._names if fnmatch.fnmatch(n, pattern))
        return sorted(p.relative_to(self.location).as_posix() for p in self.location.glob(pattern))

    def module(self, dotted: str) -> ModuleInfo | None:
        """Parsed module ``dotted``, or None when it does not exist."""
        if dotted not in self._modules:
            self._modules[dotted] = None
            base = dotted.replace(".", "/")
            for rel in (f"{base}.py", f"{base}/__init__.py"):
                if (text := self.read(rel)) is not None:
                    self._modules[dotted] = parse_module(dotted, rel, text)
                    break
        return self._modules[dotted]

    def weak_modules(self) -> list[ModuleInfo]:
        """Modules parsed so far that needed the regex fallback or a syntax rewrite."""
        return [m for m in self._modules.values() if m is not None and m.parse != "ast"]
