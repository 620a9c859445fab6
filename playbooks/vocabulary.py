"""The words for every code a person reads, in zh and en, from ``vocabulary.yaml`` beside the playbooks.

Why beside the playbooks: they are the product's one vocabulary. A team that edits its playbooks (a new
measure, another role) edits the words in the same folder, and documents, notices, the console and the
CLI can no longer disagree about what a code is called (they once said 客服组 and 客户服务组).
``INCIDENT_PLAYBOOKS`` may point at another folder; a folder without its own vocabulary uses the built-in
one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

LANGS = ("zh", "en")


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


Table = dict[str, Words]


def _file(folder: Path) -> Path:
    own = folder / "vocabulary.yaml"
    return own if own.exists() else Path(__file__).with_name("vocabulary.yaml")


@lru_cache(maxsize=8)
def _load(path: Path) -> dict[str, Table]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return {
            domain: {str(code): Words.model_validate(words) for code, words in table.items()}
            for domain, table in raw.items()
        }
    except (AttributeError, ValidationError) as exc:
        raise ValueError(f"{path}: a vocabulary maps domain → code → {{zh, en}}: {exc}") from exc


def tables() -> dict[str, Table]:
    """Every domain's table (``role``, ``status``, ``deadline`` …)."""
    from playbooks import folder

    return _load(_file(folder()))


def table(domain: str) -> Table:
    return tables()[domain]


def label(domain: str, code: object, lang: str) -> str:
    """The word for ``code`` in ``lang``; the code itself when the vocabulary has none."""
    if code is None or code == "":
        return ""
    key = str(code).lower() if isinstance(code, bool) else str(code)
    words = tables().get(domain, {}).get(key)
    return words(lang) if words else key


def codes(domain: str) -> tuple[str, ...]:
    return tuple(table(domain))


def progress_line(progress: Mapping[str, int] | None, lang: str) -> str:
    """``首次联系：已联系 37/120，5 个超时`` / ``first contacts: contacted 37/120, 5 overdue`` (or "")."""
    if not progress:
        return ""
    line = label("contact_progress", "line", lang).format(**progress)
    if progress.get("overdue"):
        line += label("contact_progress", "overdue", lang).format(**progress)
    return line


# --- phrases: words with {placeholders}, and the older English read back to their codes ------------

_FIELD = re.compile(r"\{(\w+)\}")
_LIST = re.compile(r"\s*[,;、]\s*")
ROLE_LISTS = ("roles", "needs", "held", "to")
LEVELS = ("level", "from_level", "to_level")
DOMAIN_OF = {  # a placeholder's name → the vocabulary domain its value is a code of
    "role": "role", "category": "category", "status": "status", "inbox_status": "inbox_status",
    "solution_status": "solution_status", "action": "act", "deadline": "deadline", "stage": "stage",
    "result": "result", "ticket_status": "ticket_status", "record": "record", "action_kind": "action_kind",
    "approver": "role", "owner_group": "role",
}  # fmt: skip


def _code_or_words(domain: str, value: str, lang: str) -> str:
    """``value`` is a code of ``domain``, or its English words (older messages say "post-mortem report")."""
    table_ = tables().get(domain, {})
    if value in table_:
        return table_[value](lang)
    found = next((w for w in table_.values() if w.en.casefold() == value.casefold()), None)
    return found(lang) if found else value


def _option(kind: str, code: str, lang: str) -> str:
    """A measure's or a solution's name in any playbook that has the code (messages do not say which)."""
    import playbooks

    for book in playbooks.load_all().values():
        option = getattr(book, f"{kind}s").get(code)
        if option is not None:
            return str(option.label(lang))
    return code


def say(name: str, value: object, lang: str) -> str:
    """A placeholder's value in words, by the placeholder's name: ``{role}`` is a role's name,
    ``{needs}`` several, ``{level}`` 一级 in Chinese; names (people, ids, customer text) stay as given."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    sep = "、" if lang == "zh" else ", "
    if name in ROLE_LISTS:
        parts = [p for p in _LIST.split(text) if p]
        return sep.join(
            label("error", "no_role", lang) if p == "no role" else label("role", p, lang) for p in parts
        )
    if name == "deadlines":
        return sep.join(label("deadline", p, lang) for p in _LIST.split(text) if p)
    if name in LEVELS:
        return label("level_short", text, lang) if lang == "zh" else text
    if name in ("measure", "solution"):
        return _option(name, text, lang)
    if name in DOMAIN_OF:
        return _code_or_words(DOMAIN_OF[name], text, lang)
    return text


def phrase(domain: str, code: str, lang: str, words: bool = True, **values: object) -> str:
    """``code``'s words in ``lang`` with each ``{placeholder}`` filled (``say``), or the code itself.

    Values are inserted, never parsed: a customer's ``{x}`` stays literal. ``words=False`` inserts them
    as given (the API's English errors are the exact text scripts have always read).
    """
    entry = tables().get(domain, {}).get(code)
    if entry is None:
        return code
    return _FIELD.sub(
        lambda m: say(m[1], values.get(m[1]), lang) if words else str(values.get(m[1], "")), entry(lang)
    )


@lru_cache(maxsize=16)
def _patterns(path: Path, domain: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each English phrase of ``domain`` as an anchored pattern, the most specific (longest text) first."""
    found = []
    for code, words in _load(path).get(domain, {}).items():
        parts = _FIELD.split(words.en)  # text, name, text, name, …
        literal = "".join(parts[0::2])
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        found.append((len(literal), re.compile(f"^{regex}$", re.S), code))
    return tuple((pattern, code) for _, pattern, code in sorted(found, key=lambda x: -x[0]))


def parse(domain: str, text: str) -> tuple[str, dict[str, str]] | None:
    """The code and values of an English phrase of ``domain`` (a stored message, an older detail)."""
    from playbooks import folder

    for pattern, code in _patterns(_file(folder()), domain):
        match = pattern.match(text.strip())
        if match:
            return code, match.groupdict()
    return None


def translate(domain: str, text: str, lang: str) -> str:
    """An English phrase of ``domain`` in ``lang`` (unchanged when it is no phrase of the domain)."""
    if lang == "en" or not text:
        return text
    found = parse(domain, text)
    return phrase(domain, found[0], lang, **found[1]) if found else text


def reason(value: object, lang: str) -> str:
    """A level reason in words: ``{"code": "customers_10", "n": 12}`` (incident.feedback.grading), a
    bare code, or the English an older version stored ("media or social-media exposure")."""
    if isinstance(value, dict):
        values = {k: v for k, v in value.items() if k != "code"}
        return phrase("level_reason", str(value.get("code")), lang, **values)
    text = str(value)
    if text in tables().get("level_reason", {}):
        return phrase("level_reason", text, lang)
    found = parse("level_reason", text)
    return phrase("level_reason", found[0], lang, **found[1]) if found else text
