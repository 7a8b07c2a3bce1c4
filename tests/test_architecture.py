"""The import rules of DESIGN.md and STYLE.md, checked on the source with ast (no import is executed).

* Detectors are pure: nothing under analysis/detectors/ imports the app's models, media, review or accounts.
* Module-level imports between the project's own modules form no cycle. A function-level import is the
  documented way to break a real cycle (analysis.services sending analysis.tasks, for instance) and is not
  counted here; `if TYPE_CHECKING:` imports are not counted either.
* In the packages of FUNCTION_IMPORT_SCOPE, a function-level import of a project module must break such a cycle
  (the imported module reaches the importer at module level); otherwise it belongs at the top of the file.
  `AppConfig.ready()` is exempt: Django loads apps.py before models may be imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every top-level package of the project (apps and the project package), found rather than listed.
PACKAGES = tuple(sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in {"tests", "bench"}))
DETECTORS_MUST_NOT_IMPORT = ("analysis.models", "media", "review", "hlekkr.accounts", "django.conf", "os")

# Cycles that exist today outside analysis/, each to be broken by its owner (issue 11). Written as sorted module
# tuples of the cycle; the test fails when one of them disappears too, so this list only ever shrinks.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _module_level_imports(path: Path, module: str) -> Iterator[str]:
    """Names imported at module level (not inside functions, classes' methods or `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                yield from walk(node.body)
                yield from walk(node.orelse)
            elif isinstance(node, ast.Try):
                yield from walk(node.body)
                for handler in node.handlers:
                    yield from walk(handler.body)
                yield from walk(node.orelse)
                yield from walk(node.finalbody)
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body)

    yield from walk(tree.body)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _module_level_imports(path, module):
            # `from analysis import conf` names the module analysis.conf; `from x.y import func` names x.y.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_detectors_import_nothing_from_the_app() -> None:
    offenders = []
    for path in (ROOT / "analysis" / "detectors").glob("*.py"):
        module = f"analysis.detectors.{path.stem}"
        tree = ast.parse(path.read_text(), str(path))
        # Every import, at any depth: a function-level import of the ORM is still an import of the ORM.
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if any(name == banned or name.startswith(f"{banned}.") for banned in DETECTORS_MUST_NOT_IMPORT):
                    offenders.append(f"{module}: {name}")
                if name.startswith("analysis.") and not name.startswith("analysis.detectors"):
                    offenders.append(f"{module}: {name}")
    assert offenders == []


def test_module_level_imports_between_project_modules_form_no_cycle() -> None:
    cycles = {tuple(c) for c in _cycles(_graph())}
    assert cycles - KNOWN_CYCLES == set(), "new import cycle(s); break them (see STYLE.md 'Wiring between apps')"
    assert KNOWN_CYCLES - cycles == set(), "a listed cycle is gone: remove it from KNOWN_CYCLES"


# Packages held to "function-level imports only where they break a real cycle" (issue 11 point 7). analysis/ is
# clean; add the others as they are cleaned (today's other offenders: run this test with a wider scope to list them).
FUNCTION_IMPORT_SCOPE = ("analysis",)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False


def test_function_level_imports_break_a_real_cycle() -> None:
    modules = _modules()
    graph = _graph()
    needless = []
    for module, path in modules.items():
        if module.split(".")[0] not in FUNCTION_IMPORT_SCOPE or path.name == "apps.py":
            continue
        for function in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    while name and name not in modules:
                        name = name.rpartition(".")[0]
                    if name and name != module and not _reaches(graph, name, module):
                        needless.append(f"{module}:{getattr(node, 'lineno', 0)} imports {name} inside a function")
    assert sorted(set(needless)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
