"""Collect the ``homeassistant`` names an integration uses, read from its source.

Imports, attribute chains on imported names, annotated parameters and variables, type
aliases, and ``self`` in classes derived from Home Assistant classes are followed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ha_source import class_members, is_ha

Binding = tuple[str, tuple[str, ...]]  # (module, attribute path below it)


@dataclass(frozen=True)
class Ref:
    """What a local name stands for: one or more HA paths, minus names our own code defines."""

    paths: tuple[Binding, ...]
    own: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Use:
    """One use of a ``homeassistant`` name at file:line; ``also`` lists equivalent paths."""

    module: str
    attrs: tuple[str, ...]
    file: str
    line: int
    also: tuple[Binding, ...] = ()

    @property
    def dotted(self) -> str:
        """Dotted name, e.g. ``homeassistant.const.UnitOfPower.KILO_WATT``."""
        return ".".join((self.module, *self.attrs))


def _chain(node: ast.expr) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"]); None when the root is not a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.insert(0, node.attr)
        node = node.value
    return (node.id, attrs) if isinstance(node, ast.Name) else None


class _Collector(ast.NodeVisitor):
    """Walks one file, tracking which local names refer to Home Assistant objects."""

    def __init__(self, rel: str, tree: ast.Module) -> None:
        self.rel, self.uses, self.scopes = rel, list[Use](), [dict[str, Ref]()]
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.self_ref: list[Ref | None] = [None]

    def _add(self, ref: Ref, attrs: list[str], line: int) -> None:
        if attrs and attrs[0] in ref.own:
            return
        (mod, base), *others = ref.paths
        also = tuple((m, (*b, *attrs)) for m, b in others)
        self.uses.append(Use(mod, (*base, *attrs), self.rel, line, also))

    def type_ref(self, node: ast.expr | None) -> Ref | None:
        """The HA object an annotation or alias names (``X[...]``, ``X | None``, ``"X"``)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.Subscript):
            return self.type_ref(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [s for s in (node.left, node.right) if not _is_none(s)]
            return self.type_ref(sides[0]) if len(sides) == 1 else None
        found = _chain(node) if isinstance(node, ast.Name | ast.Attribute) else None
        ref = self.scopes[-1].get(found[0]) if found else None
        if found is None or ref is None or len(ref.paths) != 1 or ref.own:
            return None
        mod, base = ref.paths[0]
        return Ref(((mod, (*base, *found[1])),))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_ha(alias.name):
                local = alias.asname or alias.name.split(".")[0]
                self.scopes[-1][local] = Ref(((alias.name if alias.asname else local, ()),))
                self.uses.append(Use(alias.name, (), self.rel, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not is_ha(node.module):
            return
        for alias in node.names:
            attrs = () if alias.name == "*" else (alias.name,)
            if attrs:
                self.scopes[-1][alias.asname or alias.name] = Ref(((node.module, attrs),))
            self.uses.append(Use(node.module, attrs, self.rel, node.lineno))

    def visit_Assign(self, node: ast.Assign) -> None:
        ref = self.type_ref(node.value) if len(node.targets) == 1 else None
        if ref and isinstance(node.targets[0], ast.Name):
            self.scopes[-1][node.targets[0].id] = ref  # alias such as X = ConfigEntry[Data]
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        ref = self.type_ref(node.annotation)
        if isinstance(node.target, ast.Name):
            if ref:
                self.scopes[-1][node.target.id] = ref
            else:
                self.scopes[-1].pop(node.target.id, None)
        self.generic_visit(node)

    def visit_TypeAlias(self, node: ast.TypeAlias) -> None:
        ref = self.type_ref(node.value)
        if ref and isinstance(node.name, ast.Name):
            self.scopes[-1][node.name.id] = ref
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.self_ref.append(self._class_ref(node, set()))
        self.generic_visit(node)
        self.self_ref.pop()

    def _class_ref(self, node: ast.ClassDef, seen: set[str]) -> Ref | None:
        """HA bases of one of our classes, with the names our own code defines on it."""
        paths: list[Binding] = []
        own = set(class_members(node))
        for base in node.bases:
            ref = self.type_ref(base)
            name = _chain(base.value if isinstance(base, ast.Subscript) else base)
            local = self.classes.get(name[0]) if name and not name[1] else None
            if ref:
                paths.extend(ref.paths)
            elif local is not None and local.name not in seen:
                sub = self._class_ref(local, seen | {node.name})
                if sub is None:
                    return None
                paths.extend(sub.paths)
                own |= sub.own
            elif not (name and name[1] == [] and name[0] in {"Generic", "Protocol", "object"}):
                return None  # a base outside HA could provide any attribute
        return Ref(tuple(paths), frozenset(own)) if paths else None

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        scope = dict(self.scopes[-1])
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for arg in args:
            ref = self.type_ref(arg.annotation)
            if ref:
                scope[arg.arg] = ref
            else:
                scope.pop(arg.arg, None)
        cls = self.self_ref[-1]
        static = any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
        )
        if cls is not None and args and not static:
            scope[args[0].arg] = cls
        self.scopes.append(scope)
        self.self_ref.append(None)
        self.generic_visit(node)
        self.self_ref.pop()
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - NodeVisitor dispatch name

    def visit_Attribute(self, node: ast.Attribute) -> None:
        found = _chain(node)
        ref = self.scopes[-1].get(found[0]) if found else None
        if found and ref:
            self._add(ref, found[1], node.lineno)
        else:
            self.generic_visit(node)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def collect_uses(package: Path) -> list[Use]:
    """Every ``homeassistant`` module, name and resolvable attribute used under ``package``."""
    uses: dict[tuple[str, tuple[str, ...], str, int], Use] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(path.relative_to(package.parent.parent).as_posix(), tree)
        collector.visit(tree)
        for use in collector.uses:
            uses.setdefault((use.module, use.attrs, use.file, use.line), use)
    return list(uses.values())
