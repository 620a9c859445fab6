"""Playbooks: the shipped ones carry domain.md §3–5; a broken one is an error naming file and field."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

import playbooks
from playbooks import PlaybookError, load_file

BUILTIN = Path(playbooks.__file__).parent


def test_shipped_playbooks_follow_the_guide() -> None:
    books = playbooks.load_all()
    assert set(books) == {"product_quality", "service_failure", "special_scenario"}
    for book in books.values():
        l1, l2, l3 = book.level(1), book.level(2), book.level(3)
        assert [l1.contact_within, l2.contact_within, l3.contact_within] == [
            timedelta(minutes=30),
            timedelta(hours=1),
            timedelta(hours=2),
        ]
        assert [l1.postmortem_due, l2.postmortem_due, l3.postmortem_due] == [
            timedelta(hours=24),
            timedelta(hours=48),
            timedelta(hours=72),
        ]
        assert [l1.satisfaction_target, l2.satisfaction_target, l3.satisfaction_target] == [0.90, 0.85, 0.80]
        assert [l1.approver, l2.approver, l3.approver] == ["leadership", "dept_head", "dept_head"]
        assert [l1.lead, l2.lead, l3.lead] == ["leadership", "cs_director", "cs_manager"]
        assert {"pr", "legal"} <= set(l1.join)
        assert [l1.progress_every, l2.progress_every] == [timedelta(hours=4), timedelta(hours=24)]
    assert books["product_quality"].cause_owner == "technical_support"
    assert books["service_failure"].cause_owner == "quality_control"
    assert books["special_scenario"].cause_owner == "logistics"
    assert set(books["product_quality"].measures) == {"spare_product", "onsite_repair", "temporary_refund"}
    assert books["product_quality"].solutions["recall"].legal_review


def _broken(tmp_path: Path, edit: dict[str, object] | None = None, text: str | None = None) -> Path:
    folder = tmp_path / "books"
    shutil.copytree(BUILTIN, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "service_failure.yaml"
    if text is not None:
        path.write_text(text)
    else:
        data = yaml.safe_load(path.read_text())
        for dotted, value in (edit or {}).items():
            node = data
            *parents, last = dotted.split(".")
            for part in parents:
                node = node[int(part) if part.isdigit() else part]
            node[last] = value
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ({"levels.2.contact_within": "soon"}, "levels.2.contact_within", "duration"),
        ({"levels.1.approver": "ceo"}, "levels.1.approver", "leadership"),
        ({"levels.3.satisfaction_target": 1.5}, "levels.3.satisfaction_target", "less than or equal"),
        ({"correlation": ["colour"]}, "correlation.0", "product_model"),
        ({"levels.2.escalate_to": []}, "levels.2.escalate_to", "at least 1"),
        ({"cause_owner": None}, "cause_owner", ""),
        ({"levels.1.contat_within": "30m"}, "levels.1.contat_within", "Extra inputs"),
    ],
)
def test_broken_playbook_names_file_and_field(
    tmp_path: Path, edit: dict[str, object], field: str, words: str
) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(PlaybookError) as err:
        load_file(path)
    message = str(err.value)
    assert str(path) in message and f"field {field}" in message and words in message


def test_missing_level_and_bad_yaml(tmp_path: Path) -> None:
    path = _broken(tmp_path, text="category: service_failure\nlevels: {1: {}}\n")
    with pytest.raises(PlaybookError, match="service_failure.yaml: field"):
        load_file(path)
    path.write_text("category: [unclosed\n")
    with pytest.raises(PlaybookError, match="cannot read playbook"):
        load_file(path)


def test_folder_with_a_broken_playbook_refuses_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _broken(tmp_path, {"levels.1.lead": "boss"})
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(path.parent))
    with pytest.raises(PlaybookError, match="levels.1.lead"):
        playbooks.load_all()
