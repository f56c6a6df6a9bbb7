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


# --- layers beyond the core -------------------------------------------------------------------

PACKAGE = CORE.parent
# what each layer may import from the project (anything not listed is forbidden)
LAYERS = {
    "channels": {
        "channels",
        "services",
        "schemas",
        "schemas_queue",
        "auth",
        "errors",
        "deps",
        "db",
        "live",
        "settings",
        "scheduling",
        "models",
        "ical",
    },
    "services": {
        "services",
        "repositories",
        "scheduling",
        "models",
        "db",
        "deps",
        "errors",
        "auth",
        "outbox",
        "ical",
        "live",
        "schemas",
    },
    "repositories": {"repositories", "models", "scheduling", "db"},
}
ENTRY_POINTS = {"cli.py", "__main__.py"}


def _project_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, as names below ``orchestrator`` ("services.booking")."""
    return {
        name.removeprefix("orchestrator.") for name in _imports(path) if name.startswith("orchestrator.")
    } | {
        f"{alias.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "orchestrator"
        for alias in node.names
    }


def test_each_layer_imports_only_the_layers_below_it():
    offenders = {}
    for layer, allowed in LAYERS.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            bad = {name for name in _project_imports(path) if name.split(".")[0] not in allowed}
            if bad:
                offenders[f"{layer}/{path.name}"] = sorted(bad)
    assert offenders == {}


def test_nothing_imports_the_http_app_or_the_cli_but_the_entry_points():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name in ENTRY_POINTS:
            continue
        bad = {name for name in _project_imports(path) if name in ("app", "cli")}
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_services_never_see_a_request_schema():
    """Use cases take commands: from ``schemas`` a service may use helpers (``e164_phone``…),
    never a request or response struct."""
    offenders = {}
    for path in (PACKAGE / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "orchestrator.schemas",
                "orchestrator.schemas_queue",
            ):
                structs = [alias.name for alias in node.names if alias.name[:1].isupper()]
                if structs or node.module == "orchestrator.schemas_queue":
                    offenders[path.name] = structs or ["schemas_queue"]
    assert offenders == {}
