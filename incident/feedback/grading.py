"""Grading: domain.md §3 as one pure function.

Level 1 is the most severe. Any one trigger is enough, and an incident's level only goes up:
``grade(signals, current=2)`` never returns 3.
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


@dataclass(frozen=True)
class Grade:
    level: int
    reasons: list[str] = field(default_factory=list)


def grade(signals: Signals, current: int | None = None) -> Grade:
    if signals.customers < 1:
        raise ValueError("customers must be at least 1")
    level_1 = [
        reason
        for reason, hit in (
            (f"{signals.customers} customers complaining (>= 100)", signals.customers >= 100),
            ("media or social-media exposure", signals.media),
            ("personal injury", signals.injury),
            ("property loss", signals.property_loss),
            ("serious brand risk", signals.brand_risk),
        )
        if hit
    ]
    level_2 = [
        reason
        for reason, hit in (
            (f"{signals.customers} customers complaining (10-99)", 10 <= signals.customers < 100),
            ("regional service outage", signals.regional_outage),
            ("large loss for the customer", signals.big_loss),
            ("customer demands compensation", signals.compensation_demand),
        )
        if hit
    ]
    if level_1:
        level, reasons = 1, level_1
    elif level_2:
        level, reasons = 2, level_2
    else:
        level, reasons = 3, [f"{signals.customers} customer(s) complaining (1-9), minor loss"]
    if current is not None and current < level:
        return Grade(current, [f"level stays {current}: a level never goes down", *reasons])
    return Grade(level, reasons)
