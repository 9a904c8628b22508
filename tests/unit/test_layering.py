"""The layering rules, read from the source with `ast` (nothing is imported): data flows down only.

- Only include/kkp_migration/airflow/ imports Airflow; the rest of the library is plain Python.
- Product code (include/, dags/, plugins/) never imports the lab, anywhere in a module.
- Modules under dags/ import no kubernetes, kubernetes_asyncio or requests when they load:
  parsing DAG files is the scheduler's hot path. Inside task callables is fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include"
LIBRARY = INCLUDE / "kkp_migration"
AIRFLOW_GLUE = LIBRARY / "airflow"
DAGS = ROOT / "dags"
PRODUCT_DIRS = (INCLUDE, DAGS, ROOT / "plugins")
HEAVY_AT_PARSE_TIME = {"kubernetes", "kubernetes_asyncio", "requests"}


def imported_modules(source: str, module: str = "", load_time_only: bool = False) -> set[str]:
    """Dotted names `source` imports (relative imports resolved against `module`).

    With `load_time_only`, imports inside function bodies are left out: they run when called,
    not when the module is imported. `from a import b` yields both `a` and `a.b`.
    """
    package = module.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if load_time_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            if origin:
                found.add(origin)
            found.update(f"{origin}.{alias.name}".lstrip(".") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def modules_under(folder: Path, load_time_only: bool = False) -> dict[str, set[str]]:
    """Path (relative to the checkout) -> what that module imports, for every .py file under `folder`."""
    top = INCLUDE if folder.is_relative_to(INCLUDE) else folder
    return {str(path.relative_to(ROOT)): imported_modules(
                path.read_text(), ".".join(path.relative_to(top).with_suffix("").parts), load_time_only)
            for path in sorted(folder.rglob("*.py"))}


def offenders(modules: dict[str, set[str]], forbidden: set[str]) -> dict[str, list[str]]:
    """Module -> the imports of it that are, or sit under, a forbidden name."""
    def bad(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in forbidden)
    return {path: sorted(filter(bad, names)) for path, names in modules.items() if any(map(bad, names))}


def test_only_the_airflow_subpackage_imports_airflow():
    library = {path: names for path, names in modules_under(LIBRARY).items()
               if not (ROOT / path).is_relative_to(AIRFLOW_GLUE)}
    assert library, f"{LIBRARY} has no modules outside airflow/ yet: nothing to check, which is not a pass"
    assert offenders(library, {"airflow", "kkp_migration.airflow"}) == {}


def test_product_code_never_imports_the_lab():
    product = {path: names for folder in PRODUCT_DIRS if folder.is_dir()
               for path, names in modules_under(folder).items()}
    assert product, "include/, dags/ and plugins/ have no modules yet: nothing to check, which is not a pass"
    assert offenders(product, {"lab"}) == {}


def test_dag_modules_import_nothing_heavy_when_parsed():
    dag_modules = modules_under(DAGS, load_time_only=True)
    assert dag_modules, f"{DAGS} has no DAG files yet: nothing to check, which is not a pass"
    assert offenders(dag_modules, HEAVY_AT_PARSE_TIME) == {}


SAMPLE = """
import os
try:
    from requests import Session
except ImportError:
    Session = None

class Gate:
    from kubernetes_asyncio import watch

def step():
    import kubernetes.client
    from ..airflow import hooks
    from . import model
"""


@pytest.mark.parametrize("load_time_only, expected", [
    (True, {"os", "requests", "requests.Session", "kubernetes_asyncio", "kubernetes_asyncio.watch"}),
    (False, {"os", "requests", "requests.Session", "kubernetes_asyncio", "kubernetes_asyncio.watch",
             "kubernetes.client", "kkp_migration.airflow", "kkp_migration.airflow.hooks",
             "kkp_migration.steps", "kkp_migration.steps.model"}),
])
def test_imported_modules_sees_nested_and_relative_imports(load_time_only, expected):
    assert imported_modules(SAMPLE, "kkp_migration.steps.restart", load_time_only) == expected


def test_offenders_match_whole_package_names():
    modules = {"a.py": {"os", "labrador", "lab.runtime"}, "b.py": {"lab"}, "c.py": {"layout"}}
    assert offenders(modules, {"lab"}) == {"a.py": ["lab.runtime"], "b.py": ["lab"]}
