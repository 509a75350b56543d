"""The import structure of the project: no import circles, no private names taken from another module.

Every module of the project's packages is parsed (not imported: no simulator is needed) and every
``import`` statement is collected, including those inside functions and ``if`` blocks, because an
import moved into a function only hides a circle.  Relative imports are resolved against the
importing module's package; ``from pkg import name`` counts as an import of the submodule
``pkg.name`` when that module exists, else of ``pkg`` itself.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("eprop_plugins", "brian2_ext", "nest_models", "pynn_ext", "validation")


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file inside a (nested) package of ``packages``."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            # only files inside packages (every directory on the way has an __init__.py)
            rel_dirs = path.relative_to(root).parents
            if all((root / d / "__init__.py").exists() for d in rel_dirs if str(d) != "."):
                out[_module_name(path, root)] = path
    return out


@dataclass(repr=False)
class ModuleImports:
    """What one module imports from the project."""

    name: str
    path: Path
    imports: dict[str, list[int]] = field(default_factory=dict)  # project module -> line numbers
    private: list[tuple[str, str, int]] = field(default_factory=list)  # (module, private name, line)

    def __repr__(self) -> str:  # short, for pytest's failure output
        return f"<{self.name}: {len(self.imports)} imports>"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _analyse(name: str, path: Path, modules: dict[str, Path], packages: tuple[str, ...] = PACKAGES) -> ModuleImports:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    info = ModuleImports(name, path)
    aliases: dict[str, str] = {}  # local name bound to a project module -> that module

    def add(target: str, line: int) -> None:
        if target in modules and target != name:
            lines = info.imports.setdefault(target, [])
            if line not in lines:
                lines.append(line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # the longest prefix that is a project module (import a.b.c binds a; "as" binds a.b.c)
                parts = alias.name.split(".")
                for k in range(len(parts), 0, -1):
                    candidate = ".".join(parts[:k])
                    if candidate in modules:
                        add(candidate, node.lineno)
                        break
                if _is_private(parts[-1]) and alias.name in modules:
                    info.private.append((".".join(parts[:-1]), parts[-1], node.lineno))
                if alias.asname and alias.name in modules:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, is_package, node.level, node.module)
            if source.split(".")[0] not in packages:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    add(sub, node.lineno)
                    aliases[alias.asname or alias.name] = sub
                else:
                    add(source, node.lineno)
                if _is_private(alias.name) and source != name:
                    info.private.append((source, alias.name, node.lineno))
    # module._private through a name bound to another project module
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and _is_private(node.attr) and aliases[node.value.id] != name):
            info.private.append((aliases[node.value.id], node.attr, node.lineno))
    return info


@pytest.fixture(scope="module")
def graph() -> dict[str, ModuleImports]:
    modules = _project_modules()
    return {name: _analyse(name, path, modules) for name, path in modules.items()}


def _where(info: ModuleImports, target: str) -> str:
    path = info.path.relative_to(ROOT) if info.path.is_relative_to(ROOT) else info.path
    return f"{path}:{','.join(map(str, info.imports[target]))}"


def _cycles(graph: dict[str, ModuleImports]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v].imports:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_every_package_is_found(graph):
    for package in PACKAGES:
        assert package in graph, package
    assert len(graph) >= 40
    assert "eprop_plugins.reference.common" in graph["eprop_plugins.reference.original"].imports


def test_relative_imports_are_resolved():
    assert _resolve("eprop_plugins.reference.original", False, 1, "common") == "eprop_plugins.reference.common"
    assert _resolve("eprop_plugins.reference.original", False, 2, "results") == "eprop_plugins.results"
    assert _resolve("eprop_plugins.reference", True, 1, "common") == "eprop_plugins.reference.common"
    assert _resolve("eprop_plugins.reference", True, 2, None) == "eprop_plugins"


def test_the_checks_find_hidden_circles_and_private_names(tmp_path):
    """On a made-up package: an import inside a function closes a circle; ``_x`` is taken two ways."""
    pkg = tmp_path / "pkgx"
    (pkg / "sub").mkdir(parents=True)
    for init in (pkg / "__init__.py", pkg / "sub" / "__init__.py"):
        init.write_text("")
    (pkg / "a.py").write_text("from .sub import c\n\ndef f():\n    from . import b\n    return b.g()\n")
    (pkg / "b.py").write_text("from .a import _hidden\nfrom pkgx.sub import c as cc\n\ndef g():\n    return cc._y\n")
    (pkg / "sub" / "c.py").write_text("import pkgx.d\n")
    (pkg / "d.py").write_text("if True:\n    from .sub.c import z\n")
    modules = _project_modules(tmp_path, ("pkgx",))
    assert set(modules) == {"pkgx", "pkgx.sub", "pkgx.a", "pkgx.b", "pkgx.sub.c", "pkgx.d"}
    g = {n: _analyse(n, p, modules, ("pkgx",)) for n, p in modules.items()}
    assert set(g["pkgx.a"].imports) == {"pkgx.sub.c", "pkgx.b"}
    assert "pkgx.a" in g["pkgx.b"].imports and "pkgx.sub.c" in g["pkgx.b"].imports
    assert _cycles(g) == [["pkgx.a", "pkgx.b"], ["pkgx.d", "pkgx.sub.c"]]
    assert sorted((m, n) for m, n, _ in g["pkgx.b"].private) == [("pkgx.a", "_hidden"), ("pkgx.sub.c", "_y")]


def test_no_two_modules_import_each_other(graph):
    pairs = sorted({tuple(sorted((a, b))) for a, info in graph.items() for b in info.imports
                    if a in graph[b].imports})
    lines = [f"{a} <-> {b}  ({_where(graph[a], b)}; {_where(graph[b], a)})" for a, b in pairs]
    assert not pairs, f"{len(pairs)} pair(s) of modules import each other:\n" + "\n".join(lines)


def test_no_longer_import_cycles(graph):
    """Circles through three or more modules (a 2-cycle is reported by the test above)."""
    longer = [c for c in _cycles(graph)
              if not (len(c) == 2 and c[0] in graph[c[1]].imports and c[1] in graph[c[0]].imports)]
    lines = []
    for component in longer:
        edges = [f"    {a} -> {b}  ({_where(graph[a], b)})" for a in component for b in graph[a].imports
                 if b in component]
        lines.append(f"  {' / '.join(component)}:\n" + "\n".join(edges))
    assert not longer, f"{len(longer)} import circle(s) through 3+ modules:\n" + "\n".join(lines)


def test_no_module_imports_a_private_name_from_another(graph):
    found = sorted((info.path.relative_to(ROOT).as_posix(), line, source, name)
                   for info in graph.values() for source, name, line in info.private)
    lines = [f"{path}:{line}: {source}.{name}" for path, line, source, name in found]
    assert not found, f"{len(found)} use(s) of another module's private name:\n" + "\n".join(lines)
