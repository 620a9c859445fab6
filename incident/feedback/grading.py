"""Grading: domain.md §3 as one pure function.

Level 1 is the most severe. Any one trigger is enough, and an incident's level only goes up:
``grade(signals, current=2)`` never returns 3.

Reasons are codes with their numbers (``{"code": "customers_10", "n": 12}``, ``{"code": "media"}``): the
words are the vocabulary's ``level_reason`` phrases (``playbooks.vocabulary.reason``), so a notice, the
console and the records say them in their reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Signals:
    """What is known about an incident so far (all its feedback taken together)."""

    customers: int = 1
    media: bool = False
    injury: bool = False
    property_loss: bool = False
    brand_risk: bool = False
    regional_outage: bool = False
    big_loss: bool = False
    compensation_demand: bool = False


Reason = dict[str, object]


@dataclass(frozen=True)
class Grade:
    level: int
    reasons: list[Reason] = field(default_factory=list)


def _hits(*candidates: tuple[Reason, bool]) -> list[Reason]:
    return [reason for reason, hit in candidates if hit]


def grade(signals: Signals, current: int | None = None) -> Grade:
    if signals.customers < 1:
        raise ValueError("customers must be at least 1")
    n = signals.customers
    level_1 = _hits(
        ({"code": "customers_100", "n": n}, n >= 100),
        ({"code": "media"}, signals.media),
        ({"code": "injury"}, signals.injury),
        ({"code": "property_loss"}, signals.property_loss),
        ({"code": "brand_risk"}, signals.brand_risk),
    )
    level_2 = _hits(
        ({"code": "customers_10", "n": n}, 10 <= n < 100),
        ({"code": "outage"}, signals.regional_outage),
        ({"code": "big_loss"}, signals.big_loss),
        ({"code": "compensation_demand"}, signals.compensation_demand),
    )
    if level_1:
        level, reasons = 1, level_1
    elif level_2:
        level, reasons = 2, level_2
    else:
        level, reasons = 3, [{"code": "customers_1", "n": n}]
    if current is not None and current < level:
        return Grade(current, [{"code": "stays", "level": current}, *reasons])
    return Grade(level, reasons)
