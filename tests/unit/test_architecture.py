"""The library's shape holds: layers (import-linter), deferred imports with a reason, module and function sizes."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "tlnlp"
MAX_MODULE_LINES = 400
MAX_FUNCTION_CODE_LINES = 50
MAX_PUBLIC_PARAMETERS = 8


def _modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("lint-imports is missing: install the dev extra (pip install -e '.[dev]').")
    return found


def test_layers_contract_is_kept():
    result = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_config_imports_no_method_training_or_hub_module():
    code = ("import sys, tlnlp.config; bad = sorted(m for m in sys.modules if m.startswith("
            "('tlnlp.methods', 'tlnlp.training', 'tlnlp.hub', 'tlnlp.tasks', 'tlnlp.runs'))); print(bad)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _comment_near(lines: list[str], node: ast.AST) -> bool:
    """A ``# deferred:`` reason on the import, or on the comment line that opens its block of imports."""
    seen = lines[node.lineno - 1:node.end_lineno]
    row = node.lineno - 2
    while row >= 0 and lines[row].strip().startswith(("from ", "import ", "#")):
        seen.append(lines[row])
        if lines[row].strip().startswith("#"):
            break
        row -= 1
    return any("# deferred:" in line for line in seen)


def _deferred_imports(path: Path) -> list[tuple[int, str, bool]]:
    text = path.read_text(encoding="utf-8")
    tree, lines = ast.parse(text), text.splitlines()
    top = {id(node) for node in tree.body}
    type_only = {id(inner) for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
        node.test) for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top and id(node) not in type_only:
            name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            found.append((node.lineno, name or "", _comment_near(lines, node)))
    return found


def test_deferred_imports_are_heavy_or_optional_and_say_why():
    problems = []
    for path in _modules():
        for line, name, reason in _deferred_imports(path):
            where = f"{path.relative_to(ROOT)}:{line} {name}"
            if name.split(".")[0] in sys.stdlib_module_names:
                problems.append(f"{where}: a standard-library import belongs at the top of the module")
            elif not reason:
                problems.append(f"{where}: a deferred import needs a '# deferred: <reason>' comment")
    assert not problems, "\n".join(problems)


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    rows = set()
    for statement in body:
        for row in range(statement.lineno, statement.end_lineno + 1):
            text = lines[row - 1].strip()
            if text and not text.startswith("#"):
                rows.add(row)
    return len(rows)


def test_module_function_and_signature_sizes():
    problems = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        where = path.relative_to(ROOT)
        if len(lines) > MAX_MODULE_LINES:
            problems.append(f"{where}: {len(lines)} lines (at most {MAX_MODULE_LINES}); split it by job")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            size = _code_lines(node, lines)
            if size > MAX_FUNCTION_CODE_LINES:
                problems.append(f"{where}:{node.lineno} {node.name}: {size} lines of code")
            args = node.args
            names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
            if not node.name.startswith("_") and len(names) > MAX_PUBLIC_PARAMETERS:
                problems.append(f"{where}:{node.lineno} {node.name}: {len(names)} parameters; group them")
    assert not problems, "\n".join(problems)


def test_the_training_layer_names_no_method():
    names = ("ulmfit", "adalora", "lora", "peft", "prompt_tuning", "feature_extraction")
    for path in (LIBRARY / "training").rglob("*.py"):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").lower().splitlines())
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {ast.get_docstring(node) or "" for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))}
        for doc in docstrings:
            code = code.replace(doc.lower(), "")
        assert not [n for n in names if n in code], f"{path.relative_to(ROOT)} names a method"
