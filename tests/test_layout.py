"""The layout of the tests themselves: shared code lives in helper modules (conftest,
auth_actions, processes, clocks, services, browser), never in a test module another imports."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_test_module_imports_another():
    modules = sorted(TESTS.glob("*.py"))
    assert len([m for m in modules if m.name.startswith("test_")]) > 20  # found the suite
    offenders = {m.name: sorted(n for n in imported_modules(m) if n.startswith("test_"))
                 for m in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text("import os\n\ndef test_x():\n    from test_serve import thing\n"
                      "    import test_other.sub\n")
    assert imported_modules(sample) == {"os", "test_serve", "test_other"}
