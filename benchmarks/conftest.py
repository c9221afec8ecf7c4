"""Collect ``bench_*.py`` files here as test modules (pytest's default pattern is test_*.py).

The project's pyproject sets ``testpaths = ["tests"]``, so a plain ``python -m pytest`` never
comes here; ``pytest benchmarks/ --benchmark-only`` does.
"""

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):
        return None  # named on the command line: pytest's own collector already takes it
    return pytest.Module.from_parent(parent, path=file_path)
