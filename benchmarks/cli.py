"""The CLI row of `make bench`: what one call of each command costs, beside `python -c pass`.

Each command runs as a user runs it, its console script in a new process against a
running `mock-qrm serve`, alternating with `python -c pass` from the same interpreter;
the median of 9 of each. Bytecode is written first (one warm-up run of each), as it is
on a user's machine: a command's cost is its imports and its call, not compiling.
Targets (SPEC 9.3): `--version`, `--help`, `completion` and `qrm-tui --version` at most
4 times `python -c pass`; a command that makes one API call at most 10 times.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.__main__ import Figure
from tests.e2e.processes import free_port, running

RUNS = 9

PRINTS = (
    ("mock-qrm --version", ["mock-qrm", "--version"]),
    ("mock-qrm --help", ["mock-qrm", "--help"]),
    ("mock-qrm completion bash", ["mock-qrm", "completion", "bash"]),
    ("qrm-tui --version", ["qrm-tui", "--version"]),
)
CALLS = (
    ("mock-qrm webhooks list", ["mock-qrm", "webhooks", "list"]),
    ("mock-qrm deliveries --json", ["mock-qrm", "deliveries", "--json"]),
    ("mock-qrm reports show 12301", ["mock-qrm", "reports", "show", "12301"]),
)


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _medians(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The command's median and `python -c pass`'s, measured turn about."""
    bare = [sys.executable, "-c", "pass"]
    _timed(command, env)  # writes the bytecode, as any first run on a user's machine does
    theirs, ours = [], []
    for _ in range(RUNS):
        theirs.append(_timed(bare, env))
        ours.append(_timed(command, env))
    return statistics.median(ours), statistics.median(theirs)


def _figure(name: str, command: list[str], env: dict[str, str], most: float) -> Figure:
    ours, bare = _medians(command, env)
    ratio = ours / bare
    return Figure(
        name=f"CLI: {name}",
        value=round(ours * 1000, 1),
        unit="ms",
        baseline=round(bare * 1000, 1),
        baseline_name="python -c pass, same interpreter, turn about (median of 9)",
        target=f"<= {most:g} x baseline",
        met=ratio <= most,
        detail={"ratio": round(ratio, 2)},
    )


def _cli_figures(folder: Path) -> list[Figure]:
    scripts = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCK_QRM_", "QRM_TUI_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env["MOCK_QRM_SERVER"] = url
    figures = []
    for name, (script, *args) in PRINTS:
        figures.append(_figure(name, [str(scripts / script), *args], env, 4))
    serve = ["serve", "--port", str(port), "--db", str(folder / "cli.sqlite3")]
    with running(serve, url + "/healthz", folder / "cli-serve.log"):
        for name, (script, *args) in CALLS:
            figures.append(_figure(name, [str(scripts / script), *args], env, 10))
    return figures


async def cli_figures(folder: Path) -> list[Figure]:
    return await asyncio.to_thread(_cli_figures, folder)
