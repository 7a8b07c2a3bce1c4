"""What the running product imports is pinned in requirements.txt (not only in the dev requirements)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("hlekkr", "media", "analysis", "review", "ratelimit")
# Imported only by tooling that runs under the dev requirements (type checking).
DEV_ONLY = {"django_stubs_ext"}


def _pinned(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==", line.strip())
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def _imported_top_level_modules() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_module_the_product_imports_is_pinned_for_run_time():
    pinned = _pinned(ROOT / "requirements.txt")
    distributions = packages_distributions()
    missing = []
    for module, where in sorted(_imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module in RUNTIME_PACKAGES or module in DEV_ONLY:
            continue
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        if not dists:
            continue  # an optional import guarded at run time and not installed here
        if not dists & pinned:
            missing.append(f"{module} ({', '.join(sorted(dists))}) imported by {where}")
    assert missing == [], "pin these in requirements.txt: " + "; ".join(missing)
