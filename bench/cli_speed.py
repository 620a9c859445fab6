"""CLI answer time against a bare Python start: issue 12 asks every command for at most 3×.

Starts a real ``incident serve`` in a temporary home (as bench/storm.py does), records one incident
through the CLI, then times each command as a person types it — a new process per invocation, the
output read to the end — against ``python3 -c "import json, urllib.request"`` (as typed, from PATH) and
the same line run by the interpreter the CLI uses (the fairer baseline: same binary, same site). The
rounds interleave all commands, so a busy moment of the machine touches every row alike; the table
shows medians and each ratio to both baselines, measured in this one run.

    python bench/cli_speed.py [--rounds 15] [--before PATH_TO_AN_OLDER_incident]

``--before`` also times another build of the command (an older checkout's venv) against the same
service, interleaved with this one, so before and after are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stormkit import served  # noqa: E402

BASE = ["-c", "import json, urllib.request"]


def commands(cli: str, incident_id: str, tag: str = "") -> dict[str, list[str]]:
    rows = {
        "incident --version": [cli, "--version"],
        "incident list": [cli, "list"],
        "incident list --json": [cli, "list", "--json"],
        "incident show ID": [cli, "show", incident_id],
        "incident notifications ID": [cli, "notifications", incident_id],
        "incident records ID": [cli, "records", incident_id],
        "incident metrics": [cli, "metrics"],
        "incident people list": [cli, "people", "list"],
        "incident audit": [cli, "audit"],
        "incident contact ID (an act)": [cli, "contact", incident_id, "--by", "王芳"],
        "incident report (bad input, exit 2)": [cli, "report", "--summary", "x", "--kind", "nope"],
    }
    return {f"{tag}{name}": argv for name, argv in rows.items()}


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cli", default=str(Path(sys.executable).with_name("incident")))
    parser.add_argument("--before", help="an older build's incident command, timed alongside")
    args = parser.parse_args()
    with served("sqlite") as (_, stage, service):
        env = {**stage.env, "INCIDENT_URL": service.url}
        report = [args.cli, "report", "--category", "service_failure", "--summary", "师傅没有上门",
                  "--customer", "李娜", "--service", "installation", "--json"]  # fmt: skip
        answer = subprocess.run(report, env=env, capture_output=True, text=True, check=True)
        incident_id = __import__("json").loads(answer.stdout)["incident_id"]
        rows = {
            "python3 -c 'import json, urllib.request' (PATH)": [shutil.which("python3") or "python3", *BASE],
            "same line, the CLI's interpreter": [sys.executable, *BASE],
            **commands(args.cli, incident_id),
            **(commands(args.before, incident_id, "before: ") if args.before else {}),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, argv in rows.items():
                times[name].append(once(argv, env))
    show(times, args.rounds)


def show(times: dict[str, list[float]], rounds: int) -> None:
    medians = {name: statistics.median(t) for name, t in times.items()}
    path_base, own_base = list(medians.values())[:2]
    table = Table(title=f"CLI answer time, median of {rounds} interleaved rounds ({os.cpu_count()} cores)")
    for column in ("command", "median ms", "× python3 (PATH)", "× same interpreter"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, median in medians.items():
        table.add_row(name, f"{median * 1000:.0f}", f"{median / path_base:.2f}", f"{median / own_base:.2f}")
    Console().print(table)
    commands_only = list(medians.items())[2:]
    for build in ("now", "before"):
        rows = [(n, m) for n, m in commands_only if n.startswith("before: ") == (build == "before")]
        if rows:
            name, worst = max(rows, key=lambda item: item[1])
            ratios = f"{worst / own_base:.2f}× the same interpreter, {worst / path_base:.2f}× python3 on PATH"
            print(f"slowest ({build}): {name} at {ratios}")


if __name__ == "__main__":
    main()
