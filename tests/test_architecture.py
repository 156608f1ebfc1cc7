"""The house's shape: a light package root, pure providers/formats/services, no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
WEB_FRAMEWORK = ("flask", "flask_sqlalchemy", "flask_limiter", "flask_migrate", "werkzeug", "sqlalchemy")
PURE_SERVICES = ("catalog", "completion_io", "failure_throttle", "key_cache", "key_material", "limits", "live_reservations",
                 "pagination", "pricing", "prompt_record")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gateway_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_gateway_modules(path: Path, known: set[str]) -> set[str]:
    """Every gateway module a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (a -> b -> a), or None (iterative DFS with colours)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_no_import_cycles_among_gateway_modules():
    modules = gateway_modules()
    known = set(modules)
    graph = {name: imported_gateway_modules(path, known) - {name} for name, path in modules.items()}
    # A package's own __init__ is imported with any of its submodules; that edge is not a cycle.
    graph = {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_providers_formats_and_pure_services_import_no_web_framework():
    modules = [name for name in gateway_modules()
               if name.startswith(("gateway.providers.", "gateway.formats."))]
    modules += [f"gateway.services.{name}" for name in PURE_SERVICES]
    modules += ["gateway", "gateway.config", "gateway.errors", "gateway.money", "gateway.redaction",
                "gateway.state", "gateway.metrics"]
    script = ("import importlib, sys\n"
              f"for name in {modules!r}: importlib.import_module(name)\n"
              f"print(','.join(m for m in {WEB_FRAMEWORK!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"these pulled in {loaded.stdout.strip()}: {modules}"


def test_one_place_registers_blueprints():
    registering = [module_name(path) for path in PACKAGE.rglob("*.py") if "register_blueprint(" in path.read_text()]
    assert registering == ["gateway.app"]
