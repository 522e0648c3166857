"""The code's shape: modules and functions small enough to read, each subpackage saying its one job, the
README's data-path table naming real places, and the results service free of the inspection runtime."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("inspection", "edge_service")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines()))
            > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines():
    long = []
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_package_opens_with_a_docstring():
    missing = [str(init.relative_to(ROOT)) for pkg in PACKAGES for init in (ROOT / pkg).rglob("__init__.py")
               if "migrations" not in init.parts and not ast.get_docstring(ast.parse(init.read_text()))]
    assert not missing, f"packages without a docstring saying their job: {missing}"


def test_readme_data_path_table_names_real_places():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("The path of the data", 1)[1].split("\n\n", 2)[1]
    places = re.findall(r"`([\w./-]+/?)`", table)
    assert len(places) >= 10, table
    missing = [p for p in places if not (ROOT / p).exists()]
    assert not missing, f"README names places that do not exist: {missing}"
    subpackages = {p.parent.name for p in (ROOT / "inspection").glob("*/__init__.py")}
    unnamed = [s for s in subpackages if f"inspection/{s}/" not in table]
    assert not unnamed, f"subpackages missing from the README table: {unnamed}"


def test_results_service_imports_only_the_schema_from_inspection():
    """edge_service may use the schema (and the pure retention rule), never the model runtime."""
    code = ("import sys, edge_service.app; "
            "print(sorted(m for m in sys.modules if m.startswith('inspection') or m in ('onnxruntime', 'onnx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    assert loaded <= {"inspection", "inspection.schema", "inspection.retention"}, loaded


def test_inspection_imports_edge_service_only_in_serve_and_demo():
    offenders = []
    for p in (ROOT / "inspection").rglob("*.py"):
        tree = ast.parse(p.read_text())
        for node in tree.body:  # module level
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "edge_service" for n in names):
                offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, f"module-level imports of edge_service: {offenders}"
