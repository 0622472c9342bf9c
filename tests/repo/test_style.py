"""Repository-wide style rules of the four source folders (issue #13), checked on the source text
with `ast`, one test per module so a failure names its file:

* every module has a docstring and declares ``__all__``: a sorted literal list or tuple of
  names the module defines or imports;
* no module imports another module's ``_private`` name (``from .x import _y``, ``import x._y``,
  or ``module._y`` on a project module it imported): a shared name is public;
* an import inside a function carries a comment on its line saying why (an optional heavy
  dependency; everything else is imported at the top).

The checker itself is tested on small sources that break each rule (the end of this file).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("flow", "hdl", "analog_models", "cocotb_tests")

def source_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py"))


def module_name(rel: str) -> str:
    """The installed name of a source file: flow/core/config.py -> xbarflow.flow.core.config."""
    parts = Path(rel).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("xbarflow", *parts))


def is_project_module(name: str, root: Path = ROOT) -> bool:
    """`name` (xbarflow.<folder>....) is a module or package of the source tree under `root`."""
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "xbarflow" or parts[1] not in SOURCE_DIRS:
        return False
    path = root.joinpath(*parts[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a ``from ... import`` names, or None for a non-project module."""
    if node.level == 0:
        return node.module if (node.module or "").startswith("xbarflow.") else None
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at top level (definitions, assignments, imports), including those
    under a top-level ``if`` or ``try``."""
    names: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return names


def declared_all(tree: ast.Module) -> list[str] | str:
    """The names of the module's ``__all__``, or a string saying what is wrong with it."""
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            try:
                names = ast.literal_eval(node.value)
            except (ValueError, TypeError):
                return "__all__ is not a literal list of names"
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                return "__all__ is not a literal list of names"
            return list(names)
    return "no __all__"


def commented_lines(source: str) -> set[int]:
    return {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


def problems(source: str, rel: str, root: Path = ROOT) -> list[str]:
    """Every rule of the module docstring that the module at `rel` (source `source`) breaks."""
    tree = ast.parse(source, filename=rel)
    module = module_name(rel)
    is_package = rel.endswith("__init__.py")
    found: list[str] = []

    if not ast.get_docstring(tree):
        found.append("no module docstring")
    names = declared_all(tree)
    if isinstance(names, str):
        found.append(names)
    else:
        bound = top_level_names(tree)
        if names != sorted(names):
            found.append("__all__ is not sorted")
        found += [f"__all__ lists {n!r}, which the module neither defines nor imports"
                  for n in names if n not in bound]

    # Private names taken from other project modules.
    project_modules: set[str] = set()       # local names bound to project modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source_module = resolve(node, module, is_package)
            if source_module is None or not is_project_module(source_module, root):
                continue
            for alias in node.names:
                target = f"{source_module}.{alias.name}"
                if alias.name.startswith("_") and source_module != module:
                    found.append(f"line {node.lineno}: imports private {target}")
                elif is_project_module(target, root):
                    project_modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not alias.name.startswith("xbarflow."):
                    continue
                if any(part.startswith("_") for part in alias.name.split(".")):
                    found.append(f"line {node.lineno}: imports private module {alias.name}")
                if alias.asname:
                    project_modules.add(alias.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in project_modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append(f"line {node.lineno}: uses private {node.value.id}.{node.attr}")

    # Imports inside functions need a reason on their line.
    comments = commented_lines(source)
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if (isinstance(node, (ast.Import, ast.ImportFrom))
                    and not comments & set(range(node.lineno, node.end_lineno + 1))):
                found.append(f"line {node.lineno}: import inside {func.name}() without a "
                             "comment saying why")
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("rel", source_files())
def test_module_style(rel):
    found = problems((ROOT / rel).read_text(), rel)
    assert not found, f"{rel}: " + "; ".join(found)


# -- the checker on sources that break each rule ---------------------------------------------------

GOOD = '''"""Doc."""

from .b import public_name
from xbarflow.hdl import protocol

__all__ = ["f", "public_name"]


def f():
    import matplotlib  # heavy: only plots need it
    return protocol.SYNC
'''


@pytest.mark.parametrize("bad, expected", [
    (GOOD.replace('"""Doc."""\n', ""), "no module docstring"),
    (GOOD.replace('__all__ = ["f", "public_name"]', ""), "no __all__"),
    (GOOD.replace('__all__ = ["f", "public_name"]', "__all__ = names()"), "not a literal list"),
    (GOOD.replace('"f", "public_name"', '"f", "g"'), "'g', which the module neither"),
    (GOOD.replace('"f", "public_name"', '"public_name", "f"'), "__all__ is not sorted"),
    (GOOD.replace("import public_name", "import _helper"), "imports private xbarflow.flow.core.b._helper"),
    (GOOD.replace("return protocol.SYNC", "return protocol._crc"), "uses private protocol._crc"),
    (GOOD.replace("  # heavy: only plots need it", ""), "import inside f() without a comment"),
    (GOOD.replace("    import matplotlib  # heavy: only plots need it\n",
                  "    from xbarflow.flow.core.paths import (\n        ROOT)\n"), "import inside f()"),
])
def test_checker_catches(bad, expected, tmp_path):
    # flow/core/a.py importing from .b: make .b (and hdl/protocol.py) project modules.
    for rel in ("flow/core/b.py", "hdl/__init__.py", "hdl/protocol.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text('"""Doc."""\n')
    assert problems(GOOD, "flow/core/a.py", tmp_path) == []
    found = problems(bad, "flow/core/a.py", tmp_path)
    assert any(expected in p for p in found), found


def test_private_import_of_own_package_relative_levels(tmp_path):
    """``from ..x import _y`` in a package resolves against the package, not its parent."""
    for rel in ("flow/sim/__init__.py", "flow/sim/runner.py", "flow/analysis/fuzz.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text('"""Doc."""\n')
    source = '"""Doc."""\n\nfrom ..sim.runner import _runner\n\n__all__ = []\n'
    assert problems(source, "flow/analysis/fuzz.py", tmp_path) == [
        "line 3: imports private xbarflow.flow.sim.runner._runner"]
    package = '"""Doc."""\n\nfrom .runner import _runner\n\n__all__ = []\n'
    assert problems(package, "flow/sim/__init__.py", tmp_path) == [
        "line 3: imports private xbarflow.flow.sim.runner._runner"]
