"""What may import what (docs/architecture.md, "Imports"), kept true by reading every module's imports.

Both kinds count: module-level imports and the lazy ones inside functions (a lazy import is still a
dependency; it only defers its cost). Cycles are checked over module-level imports, the ones that
would fail at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("incident", "flows", "models", "notifiers", "playbooks")
# Who may import the flows: the engine that runs them, and the edges that resume them (API, console).
MAY_IMPORT_FLOWS = ("flows", "incident.engine", "incident.api", "incident.response.views",
                    "incident.console", "incident.server", "incident.demo",
                    "incident.meetings.views")  # fmt: skip
FLOWS_MAY_NOT_IMPORT = ("incident.engine", "incident.api", "incident.console", "incident.cli",
                        "incident.terminal", "incident.server", "incident.client")  # fmt: skip
# The lower layers: what each may import besides itself.
LOWER = {
    "playbooks": (),
    "models": ("incident.settings",),
    "notifiers": ("models", "playbooks", "incident.settings", "incident.feedback.privacy"),
}
# The domain folders (docs/architecture.md): the same file names in each.
DOMAINS = (
    "feedback",
    "incidents",
    "response",
    "deadlines",
    "records",
    "metrics",
    "people",
    "meetings",
    "actions",
    "inbox",
    "knowledge",
)
SAME_NAMES = {"__init__", "service", "views", "cli"}
# A command's module may load only this at start-up (`incident --version` and completion stay fast).
CLI_MAY_LOAD = ("incident.terminal", "incident.errors", "incident.environ")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(module-level imports, all imports) of our own modules."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    every: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import sub`` depends on the submodule; ``from pkg import name`` on the package
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [s for s in subs if s in known] or [node.module]
        else:
            continue
        ours = {t for t in targets if t in known}
        if isinstance(node, ast.ImportFrom) and len(ours) < len(node.names) and node.module in known:
            ours.add(node.module)  # some names come from the package itself
        every |= ours
        if node in tree.body:
            top |= ours
    return top, every


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    found = modules()
    top, every = defaultdict(set), defaultdict(set)
    for name, path in found.items():
        top[name], every[name] = imports(path, set(found))
    return top, every


def test_only_the_engine_and_the_edges_import_the_flows() -> None:
    _, every = graph()
    wrong = sorted(f"{a} -> {b}" for a, bs in every.items() for b in bs
                   if under(b, ("flows",)) and not under(a, MAY_IMPORT_FLOWS))  # fmt: skip
    assert not wrong, wrong


def test_flows_do_not_import_the_engine_or_the_edges() -> None:
    _, every = graph()
    wrong = sorted(f"{a} -> {b}" for a, bs in every.items() if under(a, ("flows",))
                   for b in bs if under(b, FLOWS_MAY_NOT_IMPORT))  # fmt: skip
    assert not wrong, wrong


def test_lower_layers_import_only_what_they_may() -> None:
    _, every = graph()
    wrong = []
    for layer, allowed in LOWER.items():
        for a, bs in every.items():
            if under(a, (layer,)):
                wrong += [f"{a} -> {b}" for b in bs if not under(b, (layer, *allowed)) and b != "incident"]
    assert not sorted(wrong), wrong


def test_no_import_cycles() -> None:
    top, _ = graph()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str], seen: set[str]) -> None:
        for nxt in sorted(top[node]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, [*path, nxt], seen)

    for start in sorted(top):
        visit(start, [start], {start})
    # a package importing its own submodule from __init__ and back is Python's normal case
    real = [c for c in cycles if len({m.split(".")[0] for m in c}) > 1 or len(c) > 3]
    assert not real, real[:5]


def test_the_rules_can_fail() -> None:
    """The checker sees a violation when there is one (so a green run means something)."""
    assert under("incident.engine.queue", MAY_IMPORT_FLOWS)
    assert not under("incident.response.service", MAY_IMPORT_FLOWS)
    fake = ROOT / "tests" / "_fake_module_for_rules.py"
    fake.write_text("from flows import waiting\n\ndef f():\n    import incident.engine.sweep\n")
    try:
        top, every = imports(fake, set(modules()))
    finally:
        fake.unlink()
    assert "flows.waiting" in top and "incident.engine.sweep" in every


def test_domain_folders_keep_the_same_file_names() -> None:
    """Each folder has its ``service.py``; HTTP is in ``views.py``, commands in ``cli.py``, nowhere else."""
    for domain in DOMAINS:
        names = {p.stem for p in (ROOT / "incident" / domain).glob("*.py")}
        assert "service" in names, f"incident/{domain} has no service.py"
    found = modules()
    for name, path in found.items():
        text = path.read_text()
        if name.startswith("incident.") and name.split(".")[1] in DOMAINS:
            leaf = name.rsplit(".", 1)[-1]
            if "APIRouter(" in text:
                assert leaf == "views", f"{name} defines HTTP routes: they belong in views.py"
            if " = Group(" in text:
                assert leaf == "cli", f"{name} defines commands: they belong in cli.py"


def test_commands_load_nothing_heavy_at_start_up() -> None:
    top, _ = graph()
    for name in top:
        if name == "incident.cli" or name.endswith(".cli") and name.startswith("incident."):
            heavy = [m for m in top[name] if not m.endswith(".cli") and not under(m, CLI_MAY_LOAD)]
            assert not heavy, f"{name} imports {heavy} at module level; import them inside the command"


HEAVY = ("typer", "rich", "httpx", "pydantic", "pydantic_settings", "yaml", "sqlalchemy", "prefect",
         "fastapi")  # fmt: skip


def test_a_command_that_asks_the_service_loads_only_the_standard_library() -> None:
    """What ``incident show ID`` loads before its request (issue 12: within 3× a bare Python start)."""
    probe = (
        "import sys\n"
        "from incident.cli import parser\n"
        "import incident.client\n"
        "parser(['show', 'INC1']).parse_args(['show', 'INC1'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
