"""Intake's CPU per report, in process: what a storm's tail queues for, without the storm's noise.

Why: at 200 reports/s the API's one interpreter is ~80 % busy and most of that is the intake thread
(README 12-07 e), so a storm's p99 follows intake's CPU per report; but a storm's p99 moves 3-7x from
run to run on the same code, too much to see a 20 % change. This records ``--batches`` batches of
``--size`` reports (the storm's mix: one batch's customers and a tail of other problems) into a fresh
database with ``record_many``, as the API's intake thread does, and reads that thread's CPU clock.

With ``--against REV`` it measures the tree at REV too (``git archive`` into a temporary folder),
alternating the two ``--rounds`` times, and prints both with their ratio.

    python bench/intake_cpu.py [--db postgres|sqlite] [--against REV] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stormkit import ROOT, complaints, create_databases, drop_databases  # noqa: E402


def measure(db: str, batches: int, size: int) -> dict[str, Any]:
    """One fresh database, ``batches`` × ``record_many(size reports)``: CPU and wall time of each."""
    name = f"xp_{uuid.uuid4().hex[:10]}"
    home = Path(tempfile.mkdtemp(prefix="intake_cpu_"))
    os.environ["INCIDENT_HOME"] = str(home)
    if db == "postgres":
        create_databases(name)
        os.environ["INCIDENT_DB_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        os.environ.pop("INCIDENT_DB_URL", None)  # a SQLite file in the home
    try:
        return _record_all(batches, size)
    finally:
        if db == "postgres":
            from models import reset_engine

            reset_engine()
            drop_databases(name)


def _record_all(batches: int, size: int) -> dict[str, Any]:
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn
    from models import migrate

    migrate.upgrade()
    intake.warm_up()
    bodies = [FeedbackIn(**body) for body in complaints(batches * size, batches * size // 2, 20)]
    cpu, wall = [], []
    for start in range(0, len(bodies), size):
        c0, w0 = time.thread_time(), time.perf_counter()
        intake.record_many(bodies[start : start + size])
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        "cpu_ms_per_report": 1000 * sum(cpu) / len(bodies),
        "batch_p50_ms": 1000 * statistics.median(wall),
        "batch_p95_ms": 1000 * statistics.quantiles(wall, n=20)[-1],
    }


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a new interpreter with ``tree`` first on the path (its imports, its code)."""
    command = [sys.executable, __file__, "--child", "--db", args.db]
    command += ["--batches", str(args.batches), "--size", str(args.size)]
    env = os.environ | {"PYTHONPATH": str(tree)}
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def export(rev: str) -> Path:
    """The tree at ``rev``, without touching this checkout (no worktree to clean up)."""
    folder = Path(tempfile.mkdtemp(prefix=f"intake_cpu_{rev[:8]}_"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    archive_path = folder / "tree.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def _each(runs: list[dict[str, Any]], key: str, digits: int) -> str:
    """One measure of every round, in the order they ran."""
    return ", ".join(f"{run[key]:.{digits}f}" for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--size", type=int, default=5, help="reports per record_many (a storm's batch)")
    parser.add_argument("--against", help="a git revision to measure too, alternating with this tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.db, args.batches, args.size)))
        return
    trees = {"this tree": ROOT} | ({args.against: export(args.against)} if args.against else {})
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for _ in range(args.rounds):
        for label, tree in trees.items():
            results[label].append(run_tree(tree, args))
    title = f"intake CPU, {args.batches} batches of {args.size} on {args.db}, {args.rounds} rounds"
    table = Table(title=title)
    for column in ("tree", "CPU ms / report", "median", "batch p50 ms", "batch p95 ms"):
        table.add_column(column)
    medians = {}
    for label, runs in results.items():
        medians[label] = statistics.median(r["cpu_ms_per_report"] for r in runs)
        cpu, p50, p95 = (_each(runs, key, d) for key, d in (("cpu_ms_per_report", 2), ("batch_p50_ms", 1),
                                                           ("batch_p95_ms", 1)))  # fmt: skip
        table.add_row(label, cpu, f"{medians[label]:.2f}", p50, p95)
    Console().print(table)
    if args.against:
        ratio = medians["this tree"] / medians[args.against]
        print(f"this tree / {args.against}: {ratio:.2f}× CPU per report")


if __name__ == "__main__":
    main()
