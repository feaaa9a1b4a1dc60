"""schemathesis against the OpenAPI schema of a running ``injectctl serve``: no 500s, no crash.

The operations are shared among a few schemathesis processes run at once, each one
operation at a time: the fuzz mostly waits on routes that wait on the devices, and worker
threads inside one schemathesis failed a fresh clone's run in the fuzzer itself with
"AST constructor recursion depth mismatch" from hypothesis's ``ast.parse``, CPython
3.11.7's race between threads (python/cpython#106905). Separate processes share no parser.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli

# Alone: schemathesis keeps a core busy for over a minute; with it in the two-at-a-time
# pass a neighbour failed in each of two runs (docs/performance.md, session 31).
pytestmark = pytest.mark.exclusive

BIN = Path(sys.executable).parent
PORT = 8798
# examples per operation: a few in make test (every route, every parameter kind reached),
# many more in make soak
EXAMPLES = int(os.environ.get("INJECTCTL_API_FUZZ_EXAMPLES", "6"))
FUZZERS = 4
NOT_FUZZED = (
    # provoking faults breaks the simulated devices on purpose (a silent bridge then answers
    # 503, rightly); its input validation is covered in test_api_panels.py
    "/api/v1/sim/faults",
    # a run on the emulated gravimetric bench keeps emulators busy in the server for as long
    # as the fuzzer asks (up to 240 min at 1x); covered in test_gravimetric_api
    "/api/v1/calibration/pump/gravimetric/run",
)


def shares_of(paths: list[str], fuzzers: int) -> list[list[str]]:
    """The schema's paths dealt round-robin, so each fuzzer gets some of every kind."""
    fuzzed = sorted(p for p in paths if p not in NOT_FUZZED)
    return [fuzzed[i::fuzzers] for i in range(fuzzers)]


async def fuzz_share(paths: list[str], token: str) -> tuple[int, int, str]:
    """(exit status, operations tested, output) of one schemathesis over ``paths``."""
    only = "^(?:" + "|".join(re.escape(p) for p in paths) + ")$"
    fuzz = await asyncio.create_subprocess_exec(
        str(BIN / "schemathesis"),
        "run",
        f"http://127.0.0.1:{PORT}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--include-path-regex",
        only,
        "-H",
        f"Authorization: Bearer {token}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(fuzz.communicate(), 180 + 10 * EXAMPLES)
    text = out.decode()
    tested = re.search(r"Tested: (\d+)", text)
    assert fuzz.returncode is not None
    return fuzz.returncode, int(tested.group(1)) if tested else 0, text


@pytest.mark.timeout(240 + 10 * EXAMPLES)  # 6 examples: about 40 s alone on this machine
async def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    env = {**os.environ, "INJECTCTL_TOKEN": "fuzz-token"}
    # an automation person, who may do everything the API offers (calibration included)
    code, printed, refused = await run_cli(
        "users", "add", "fuzz", "--role", "automation", "--db", str(tmp_path / "db")
    )
    assert code == 0, refused
    token = printed.strip().splitlines()[-1]
    serve = await asyncio.create_subprocess_exec(
        str(BIN / "injectctl"),
        "serve",
        "--sim",
        "--port",
        str(PORT),
        "--db",
        str(tmp_path / "db"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert serve.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert b"dashboard at" in await serve.stdout.readline()
        async with httpx.AsyncClient() as client:
            schema = (await client.get(f"http://127.0.0.1:{PORT}/openapi.json")).json()
        shares = shares_of(list(schema["paths"]), FUZZERS)
        operations = sum(len(schema["paths"][path]) for share in shares for path in share)
        results = await asyncio.gather(*(fuzz_share(share, token) for share in shares))
        for (status, _, text), share in zip(results, shares, strict=True):
            assert status == 0, f"{share}:\n{text[-3000:]}"
            assert "Server error" not in text, f"{share}:\n{text[-3000:]}"
        # every operation but those of the two paths left out, each by exactly one fuzzer
        assert operations >= 25 and sum(tested for _, tested, _ in results) == operations
        assert serve.returncode is None, "the server must survive whatever it was sent"
    finally:
        serve.terminate()
        _, err = await asyncio.wait_for(serve.communicate(), 30)
    assert serve.returncode == 0 and b"Traceback" not in err
