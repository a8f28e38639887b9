"""No import circle among the modules of ``adpipeline``.

The test reads every module's source with :mod:`ast` (nothing is imported) and draws an arrow from a module to each
``adpipeline`` module it imports. It counts three kinds of import, because each says that one module needs another:

- module-level imports (also those inside a top-level ``try`` / ``if`` or a class body): they run when the module is
  first imported, so a circle of them can fail at import time depending on which module comes first;
- imports inside functions: they run when the function is called. Deferring an import is the usual way a circle is
  hidden from Python's import machinery, not a way it is removed (``privacy`` and ``stages.faces`` imported each other
  like that), so they count;
- imports under ``if TYPE_CHECKING:``: they never run, but the type checker follows them and the module is written
  against the other's types: a layering circle all the same.

What is not an arrow: a submodule's implicit import of its parent package (importing ``adpipeline.warehouse.base``
runs ``adpipeline/warehouse/__init__.py`` first; a package ``__init__`` that imports its own submodules is the
ordinary pattern, and every submodule would otherwise form a circle with it). ``from pkg import name`` points at
``pkg.name`` when that is a module, else at ``pkg``.

A strongly connected component of more than one module is a circle; the failure names one concrete cycle in it with
the file and line of each import. ``ALLOWED`` lists the circles known and not fixed yet; an entry that is no longer a
circle fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import adpipeline

PACKAGE_DIR = Path(adpipeline.__file__).resolve().parent

ALLOWED: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` imports ``target`` at ``path:line`` (``kind``: module, function or type-checking)."""

    source: str
    target: str
    path: str
    line: int
    kind: str

    def describe(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{self.line}, {self.kind}-level import)"


def module_names(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) for every ``.py`` file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _deepest(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _kinds(tree: ast.Module) -> dict[int, str]:
    """id(import node) -> 'function' or 'type-checking' for the imports that are not plain module-level ones."""
    kinds: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    kinds.setdefault(id(sub), "type-checking")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for sub in ast.walk(node):
                if sub is not node and kinds.get(id(sub)) != "type-checking":
                    kinds[id(sub)] = "function"
    return kinds


def import_arrows(root: Path, package: str) -> list[Arrow]:
    """Every import of a ``package`` module by a module under ``root`` (``root`` is the package's directory)."""
    modules = module_names(root, package)
    arrows = []
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        kinds = _kinds(tree)
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if not (target == package or target.startswith(package + ".")):
                    continue
                found = _deepest(target, modules)
                if found and found != name:
                    rel = path.relative_to(root.parent).as_posix()
                    arrows.append(Arrow(name, found, rel, node.lineno, kinds.get(id(node), "module")))
    return arrows


def circles(arrows: list[Arrow]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = {}
    for a in arrows:
        graph.setdefault(a.source, set()).add(a.target)
        graph.setdefault(a.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(frozenset(component))
    return out


def one_cycle(component: frozenset[str], arrows: list[Arrow]) -> list[Arrow]:
    """A shortest cycle through the component's first module (by name), as the imports that make it."""
    inside = {}
    for a in arrows:
        if a.source in component and a.target in component:
            inside.setdefault(a.source, []).append(a)
    start = min(component)
    came_by: dict[str, Arrow] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for a in sorted(inside.get(node, []), key=lambda x: (x.target, x.line)):
            if a.target == start:
                path = [a]
                while path[0].source != start:
                    path.insert(0, came_by[path[0].source])
                return path
            if a.target not in came_by:
                came_by[a.target] = a
                queue.append(a.target)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def describe(component: frozenset[str], arrows: list[Arrow]) -> str:
    cycle = one_cycle(component, arrows)
    names = " -> ".join([cycle[0].source, *(a.target for a in cycle)])
    return f"import circle {names}:\n" + "\n".join(f"    {a.describe()}" for a in cycle)


def test_no_import_circle_in_adpipeline() -> None:
    arrows = import_arrows(PACKAGE_DIR, "adpipeline")
    assert len({a.source for a in arrows}) > 50, "the walk found too few modules: is PACKAGE_DIR right?"
    found = circles(arrows)
    new = [describe(c, arrows) for c in found if c not in ALLOWED]
    assert not new, "\n\n".join(new)
    gone = [sorted(c) for c in ALLOWED if c not in found]
    assert not gone, f"no longer a circle, remove it from ALLOWED: {gone}"


def test_the_privacy_package_imports_nothing_from_the_stages() -> None:
    arrows = import_arrows(PACKAGE_DIR, "adpipeline")
    up = [
        a.describe()
        for a in arrows
        if a.source.startswith("adpipeline.privacy") and a.target.startswith("adpipeline.stages")
    ]
    assert not up, up


def _write(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


def test_a_circle_through_a_function_level_import_is_found(tmp_path) -> None:
    pkg = _write(
        tmp_path,
        {
            "a.py": "from pkg.b import helper\n",
            "b.py": "def helper():\n    from pkg import a\n    return a\n",
            "sub/__init__.py": "from pkg.sub import c\n",
            "sub/c.py": "from . import d\n",
            "sub/d.py": "import os\n",
        },
    )
    arrows = import_arrows(pkg, "pkg")
    assert {(a.source, a.target, a.kind) for a in arrows} == {
        ("pkg.a", "pkg.b", "module"),
        ("pkg.b", "pkg.a", "function"),
        ("pkg.sub", "pkg.sub.c", "module"),
        ("pkg.sub.c", "pkg.sub.d", "module"),
    }
    assert circles(arrows) == [frozenset({"pkg.a", "pkg.b"})], "a package __init__ importing its submodule is no circle"
    text = describe(frozenset({"pkg.a", "pkg.b"}), arrows)
    assert "pkg.a -> pkg.b -> pkg.a" in text and "pkg/b.py:2, function-level" in text


def test_a_type_checking_circle_of_three_is_named(tmp_path) -> None:
    pkg = _write(
        tmp_path,
        {
            "x.py": "from pkg import y\n",
            "y.py": "from .z import Z\n",
            "z.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.x import X\n",
        },
    )
    arrows = import_arrows(pkg, "pkg")
    assert circles(arrows) == [frozenset({"pkg.x", "pkg.y", "pkg.z"})]
    assert "pkg.x -> pkg.y -> pkg.z -> pkg.x" in describe(frozenset({"pkg.x", "pkg.y", "pkg.z"}), arrows)
    assert [a.kind for a in arrows if a.source == "pkg.z"] == ["type-checking"]
