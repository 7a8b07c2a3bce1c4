"""schemathesis against the OpenAPI schema, on a live server over HTTP, authenticated: no 5xx, no response the
schema does not describe, no schema-invalid request accepted, 405 for undocumented methods.

Bounded for CI (`SCHEMATHESIS_MAX_EXAMPLES`, default 10 per operation, fixed seed); run it wider by hand with
`SCHEMATHESIS_MAX_EXAMPLES=200 pytest tests/security/test_schemathesis.py` (README, "Reliability and security").
Operations run as a client (every operation) and as a moderator (the review API).

Network-level failures are retried twice with a 60 s timeout: on a loaded two-core CI machine a request can
stall, which says nothing about the API (one unexplained failure in about ten runs alongside the rest of the
suite; each failure prints schemathesis' report and a curl line to replay it).

One check is left out: `positive_data_acceptance` (schema-valid data must be accepted). Some rules cannot be
written in OpenAPI 3.0 — trust_min <= trust_max, a webhook or fetch URL whose host must resolve to a public
address, a cursor the API handed out, bytes that must be real media — and those stay 400s with their own codes
(hlekkr/openapi.py says so in the descriptions). Everything JSON Schema can say is in the schema, and the
opposite check (`negative_data_rejection`: schema-invalid data must be refused) runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, live_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("schemathesis")]
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("schemathesis-var")) as live:
        yield live


def schemathesis(server: LiveServer, user: str, *selection: str) -> subprocess.CompletedProcess[str]:
    # One worker: with two, hypothesis describes strategies by parsing lambda sources with ast.parse in two threads
    # at once, and CPython 3.11 intermittently raises "SystemError: AST constructor recursion depth mismatch"
    # (a runtime error of the run, not a finding about the API); seen in a clean-clone CI run, both tests.
    return subprocess.run(
        [
            *(SCHEMATHESIS, "run", f"{server.url}/api/schema/?format=json", "--url", server.url),
            *("-H", f"Authorization: Bearer {server.token(user)}"),
            *("--checks", "all", "--exclude-checks", "positive_data_acceptance"),
            *("--max-examples", MAX_EXAMPLES, "--seed", "14", "--workers", "1", "--no-color"),
            *("--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--request-retries", "2"),
            *selection,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=server.var,  # schemathesis writes its example database and reports under the current directory
    )


def _report(done: subprocess.CompletedProcess[str]) -> str:
    """The failures section (what failed, the response, a curl line to reproduce) and the summary."""
    out = done.stdout
    start = out.find("FAILURES")
    return (out[start:] if start != -1 else out[-6000:])[:12000] + done.stderr[-2000:]


def test_every_operation_as_a_client(server: LiveServer) -> None:
    done = schemathesis(server, "client", "--exclude-path-regex", "/review/")
    assert done.returncode == 0, _report(done)


def test_the_review_api_as_a_moderator(server: LiveServer) -> None:
    done = schemathesis(server, "moderator", "--include-path-regex", "/review/")
    assert done.returncode == 0, _report(done)
