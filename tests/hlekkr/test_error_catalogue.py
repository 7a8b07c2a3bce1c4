"""Every error code the source can send is in hlekkr/errors.py, with the status it is sent with, and the
rendered docs/api-errors.md is current. The source is read with `ast`, so a new `code="..."` fails here
before any client sees it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from hlekkr import errors, exceptions
from hlekkr.api import _DRF_CODES

ROOT = Path(__file__).resolve().parents[2]

# Calls whose `code=` is not an API error code: Django's ValidationError is form/model validation shown in
# admin and dashboard forms (never the API envelope: DRF's serializers put their messages under
# details.fields), and a detector Reason's code is a finding documented in docs/analysis.md.
NOT_API_CODES = {"ValidationError", "Reason"}
# Helpers that take the code as a positional argument, and where it sits.
CODE_ARGUMENT = {"error_body": 0, "_json_error": 1}
# Functions that compute a code a view then sends (`_json_error(403, problem, ...)`): their string returns.
CODE_RETURNING = {("media/multipart.py", "part_token_check")}
# Every exception class in the hierarchy, by name, with its status.
STATUS_OF = {cls.__name__: cls.status_code for cls in vars(exceptions).values() if isinstance(cls, type)
             and issubclass(cls, exceptions.HlekkrError)}  # fmt: skip


@dataclass(frozen=True)
class Use:
    code: str
    where: str
    status: int | None  # known when the raise names its class (or a literal status)


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _uses_in(path: Path) -> Iterator[Use]:
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(), filename=relative)
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            name = _name(node.func)
            for keyword in node.keywords:
                code = _str(keyword.value) if keyword.arg == "code" else None
                if code is not None and name not in NOT_API_CODES:
                    yield Use(code, f"{where} {name}(code=...)", STATUS_OF.get(name))
            position = CODE_ARGUMENT.get(name)
            if position is not None and len(node.args) > position:
                code = _str(node.args[position])
                status = (
                    node.args[0].value if name == "_json_error" and isinstance(node.args[0], ast.Constant) else None
                )
                if code is not None:
                    yield Use(code, f"{where} {name}()", status if isinstance(status, int) else None)
        elif isinstance(node, ast.Dict):
            # DRF's AuthenticationFailed({"detail": ..., "code": ...}): the API handler keeps that code (401).
            keys = [_str(k) for k in node.keys]
            if "detail" in keys and "code" in keys:
                code = _str(node.values[keys.index("code")])
                if code is not None:
                    yield Use(code, f"{where} {{'detail', 'code'}}", 401)
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "code" for t in statement.targets
                ):
                    code = _str(statement.value)
                    if code is not None:
                        yield Use(code, f"{where} class {node.name}", STATUS_OF.get(node.name))
        elif isinstance(node, ast.FunctionDef) and (relative, node.name) in CODE_RETURNING:
            for inner in ast.walk(node):
                code = _str(inner.value) if isinstance(inner, ast.Return) else None
                if code is not None:
                    yield Use(code, f"{where} {node.name}() returns", None)


def source_dirs() -> list[Path]:
    """The project's own packages: every installed app that lives in this repository, and the project package."""
    found = {ROOT / "hlekkr"}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(ROOT) and ".venv" not in path.parts:
            found.add(ROOT / path.relative_to(ROOT).parts[0])
    return sorted(found)


def test_the_scan_covers_every_app_of_the_project():
    names = {path.name for path in source_dirs()}
    assert {"hlekkr", "media", "analysis", "review", "batches", "ratelimit"} <= names


def source_uses() -> list[Use]:
    uses = [Use(code, f"hlekkr/api.py _DRF_CODES[{cls.__name__}]", getattr(cls, "status_code", None))
            for cls, code in _DRF_CODES.items()]  # fmt: skip
    for directory in source_dirs():
        for path in sorted(directory.rglob("*.py")):
            if "migrations" not in path.parts:
                uses.extend(_uses_in(path))
    return uses


def test_the_scan_finds_the_codes_it_is_meant_to_find():
    found = {use.code for use in source_uses()}
    # one of each kind of site: a raise with code=, a class default, error_body(), a DRF detail dict, a DRF
    # class mapping, a computed code
    assert {"queue_empty", "conflict", "server_error", "token_expired", "method_not_allowed"} <= found
    assert "part_token_expired" in found


def test_every_code_the_source_sends_is_catalogued():
    missing = sorted({f"{use.code}  ({use.where})" for use in source_uses() if use.code not in errors.BY_CODE})
    assert not missing, "add these codes to hlekkr/errors.py with their meaning:\n" + "\n".join(missing)


def test_each_code_is_sent_with_a_catalogued_status():
    def sent_with_another_status(use: Use) -> bool:
        entry = errors.BY_CODE.get(use.code)
        # a code with no status (recorded only) is never sent, whatever class carries it
        return (
            entry is not None and bool(entry.statuses) and use.status is not None and use.status not in entry.statuses
        )

    wrong = sorted(
        f"{use.code}: {use.status} at {use.where}, catalogued {errors.BY_CODE[use.code].statuses}"
        for use in source_uses()
        if sent_with_another_status(use)
    )
    assert not wrong, "\n".join(wrong)


def test_the_catalogue_lists_no_code_that_nothing_sends():
    found = {use.code for use in source_uses()}
    stale = sorted(set(errors.BY_CODE) - found)
    assert not stale, f"catalogued but never raised (remove them from hlekkr/errors.py): {stale}"


def test_each_code_is_catalogued_once_with_a_meaning():
    codes = [entry.code for entry in errors.CATALOGUE]
    assert len(codes) == len(set(codes))
    assert all(entry.meaning.strip() for entry in errors.CATALOGUE)


def test_docs_api_errors_md_is_current():
    path = ROOT / "docs" / "api-errors.md"
    assert path.read_text() == errors.render_markdown(), "run: python manage.py api_errors --write"


def test_the_command_checks_the_document(tmp_path):
    stale = tmp_path / "api-errors.md"
    stale.write_text("old\n")
    with pytest.raises(CommandError, match="stale"):
        call_command("api_errors", "--check", "--path", str(stale))
    call_command("api_errors", "--write", "--path", str(stale))
    assert stale.read_text() == errors.render_markdown()
    call_command("api_errors", "--check", "--path", str(stale))
