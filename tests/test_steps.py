"""The one table of human steps, the one vocabulary and the one settings object hold for every edge.

These read the real modules (the CLI's parser, the API's OpenAPI document, the console's form reader,
the flows' Resume form) and check each against ``incident.response.steps``: a step the table gains or
loses shows up here as an edge that disagrees.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import playbooks
from incident import settings
from incident.api.app import create_app
from incident.api.schemas import ACTION_OUT
from incident.cli import parser
from incident.console.forms import to_body
from incident.feedback.inputs import FeedbackIn
from incident.records.documents import i18n
from incident.response.cli import commands as step_commands
from incident.response.steps import BY_ACTION, BY_POINT, STEPS, at, who_does
from playbooks import vocabulary

ACTIONS = ("contact", "measure", "cause", "propose", "approve", "confirm", "survey")


def test_the_table_names_the_seven_steps_of_the_guide() -> None:
    assert tuple(s.action for s in STEPS) == ACTIONS
    assert set(BY_POINT) == {"contact", "measure", "cause", "proposal", "approval", "confirmation", "survey"}
    assert at("approval-2-retry-1") is BY_ACTION["approve"]


def _options(command: str) -> set[str]:
    """The fields a command sends: its parser's option destinations but the common ones."""
    sub = parser([command])._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {a.dest for a in sub._actions} - {"help", "json", "incident_id"}


def test_cli_commands_are_the_steps_with_their_help_and_fields() -> None:
    by_name = {c.name: c for c in step_commands.commands}
    assert set(by_name) == set(ACTIONS)
    for step in STEPS:
        assert by_name[step.action].help == step.help, step.action
        fields = step.model.model_fields
        required = {name for name, info in fields.items() if info.is_required()}
        assert required <= _options(step.action) <= set(fields), step.action


def test_cli_report_takes_every_field_of_the_apis_model() -> None:
    assert _options("report") == set(FeedbackIn.model_fields)


def test_api_routes_are_the_steps_with_their_models() -> None:
    spec = create_app("token").openapi()
    assert set(ACTION_OUT) == set(BY_ACTION)
    for step in STEPS:
        post = spec["paths"][f"/api/incidents/{{incident_id}}/{step.action}"]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith(f"/{step.model.__name__}") and post["description"] == step.help


def test_console_forms_validate_with_the_steps_models() -> None:
    body = to_body("survey", {"speed": "5", "result": "4", "attitude": "5", "by": "王芳"})
    assert isinstance(body, BY_ACTION["survey"].model) and body.speed == 5
    with pytest.raises(KeyError):
        to_body("delete", {})


def test_who_does_each_step_comes_from_the_playbook() -> None:
    assert who_does(BY_ACTION["approve"], "product_quality", 1) == ["leadership"]
    assert who_does(BY_ACTION["approve"], "service_failure", 3) == ["dept_head"]
    assert who_does(BY_ACTION["cause"], "special_scenario", 2) == ["logistics"]
    assert who_does(BY_ACTION["survey"], "product_quality", 2) == ["customer_service"]
    assert "leadership" in who_does(BY_ACTION["measure"], "product_quality", 1)


def test_every_code_people_read_has_words_in_both_languages() -> None:
    roles = set(playbooks.roles())
    assert roles == set(vocabulary.table("role"))
    for point in BY_POINT:
        assert vocabulary.label("duty", point, "zh") != point
    for book in playbooks.load_all().values():
        assert vocabulary.label("category", book.category, "zh") == book.title.zh
    # documents and notices say the same (they once said 客户服务组 and 客服组)
    assert i18n.label("role", "customer_service", "zh") == "客服组"
    assert vocabulary.label("role", "customer_service", "en") == "Customer service group"


def test_a_teams_own_vocabulary_and_analysis_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "books"
    shutil.copytree(
        Path(playbooks.__file__).parent, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    words = yaml.safe_load((folder / "vocabulary.yaml").read_text())
    words["role"]["customer_service"]["zh"] = "售后客服组"
    (folder / "vocabulary.yaml").write_text(yaml.safe_dump(words, allow_unicode=True))
    book = yaml.safe_load((folder / "service_failure.yaml").read_text())
    book["analysis"]["low_result_area"] = "product"
    (folder / "service_failure.yaml").write_text(yaml.safe_dump(book, allow_unicode=True))
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(folder))
    assert i18n.label("role", "customer_service", "zh") == "售后客服组"
    assert playbooks.get("service_failure").analysis.low_result_area == "product"
    book["levels"][1]["lead"] = "boss"  # a role outside the vocabulary is refused, naming it
    (folder / "service_failure.yaml").write_text(yaml.safe_dump(book, allow_unicode=True))
    with pytest.raises(playbooks.PlaybookError, match="unknown role 'boss'"):
        playbooks.load_file(folder / "service_failure.yaml")


def test_settings_are_typed_and_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_SWEEP_SECONDS", "2.5")
    monkeypatch.setenv("INCIDENT_LANG", "zh_CN.UTF-8")
    assert settings.get().sweep_seconds == 2.5 and settings.get().lang == "zh"
    monkeypatch.setenv("INCIDENT_LANG", "en-US")
    assert settings.get().lang == "en"
    monkeypatch.setenv("INCIDENT_SWEEP_SECONDS", "soon")
    with pytest.raises(
        settings.SettingsError, match="INCIDENT_SWEEP_SECONDS='soon': Input should be a valid number"
    ):
        settings.get()


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n### ")[0]
    internal = {"prefect_db", "worker_ready_file"}  # passed from `incident serve` to its worker
    for name in set(settings.Settings.model_fields) - internal:
        assert f"`INCIDENT_{name.upper()}`" in table, name


def test_the_clis_light_settings_read_as_the_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """incident/environ.py reads a few INCIDENT_* without pydantic: same names, same defaults."""
    from incident import environ

    for name in ("INCIDENT_HOME", "INCIDENT_URL", "INCIDENT_TOKEN", "INCIDENT_API_TOKEN", "INCIDENT_LANG",
                 "INCIDENT_START_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    defaults = settings.Settings()
    assert environ.home() == defaults.home.resolve() and environ.url() == defaults.url
    assert environ.lang() == defaults.lang and environ.start_timeout() == defaults.start_timeout
    assert environ.token() == defaults.token and environ.api_token() == defaults.api_token
    monkeypatch.setenv("INCIDENT_LANG", "en-US")
    monkeypatch.setenv("INCIDENT_START_TIMEOUT", "30")
    assert environ.lang() == settings.get().lang == "en" and environ.start_timeout() == 30.0
