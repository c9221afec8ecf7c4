"""The layout shows the data path, and functions stay short enough to read."""

import ast
from pathlib import Path

import fastseg

ROOT = Path(fastseg.__file__).parent
TOP_LEVEL = {
    "__init__.py",
    "__main__.py",
    "_version.py",
    "config.py",
    "errors.py",
    "interrupts.py",
    "progress.py",
}
PACKAGES = {
    "io",
    "preprocess",
    "cluster",
    "metrics",
    "workflow",
    "datasets",
    "cli",
    "distributed",
    "monitor",
    "serve",
    "dashboard",
}
MAX_LINES = 60  # of code, docstring aside; Numba kernels excepted (one loop nest each)


def test_modules_live_in_the_subpackage_of_their_stage():
    top = {p.name for p in ROOT.glob("*.py")}
    assert top <= TOP_LEVEL, top - TOP_LEVEL
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == PACKAGES


def long_functions():
    found = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if any("jit" in ast.unparse(d) for d in node.decorator_list):
                continue
            first = node.body[0]
            docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            start = first.end_lineno + 1 if docstring and len(node.body) > 1 else node.lineno
            if node.end_lineno - start + 1 > MAX_LINES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_no_function_outside_the_numba_kernels_is_longer_than_60_lines():
    assert long_functions() == []
