"""The core stays pure: scheduling/ imports only the standard library (and itself)."""

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "orchestrator" / "scheduling"
ALLOWED = set(sys.stdlib_module_names) | {"__future__"}
FORBIDDEN_STDLIB = {"asyncio", "socket", "subprocess", "threading", "urllib", "http", "sqlite3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_modules_exist():
    assert len(list(CORE.glob("*.py"))) >= 2


def test_core_imports_only_stdlib_and_itself():
    offenders = {}
    for path in CORE.glob("*.py"):
        bad = {
            name
            for name in _imports(path)
            if not name.startswith("orchestrator.scheduling")
            and (name.split(".")[0] not in ALLOWED or name.split(".")[0] in FORBIDDEN_STDLIB)
        }
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_core_never_reads_the_clock():
    for path in CORE.glob("*.py"):
        source = path.read_text()
        for call in ("datetime.now(", "date.today(", "time.time(", "datetime.utcnow("):
            assert call not in source, f"{path.name} reads the clock via {call}"
