"""domain.md §3 as a table: every trigger, the boundaries, the worked examples, and 'only up'."""

from __future__ import annotations

import pytest

from incident.feedback.grading import Signals, grade


@pytest.mark.parametrize(
    ("signals", "level"),
    [
        # customers: the 9/10 and 99/100 boundaries
        (Signals(customers=1), 3),
        (Signals(customers=9), 3),
        (Signals(customers=10), 2),
        (Signals(customers=99), 2),
        (Signals(customers=100), 1),
        (Signals(customers=5000), 1),
        # level-1 triggers, each alone is enough
        (Signals(media=True), 1),
        (Signals(injury=True), 1),
        (Signals(property_loss=True), 1),
        (Signals(brand_risk=True), 1),
        # level-2 triggers
        (Signals(regional_outage=True), 2),
        (Signals(big_loss=True), 2),
        (Signals(compensation_demand=True), 2),
        # a level-1 trigger wins over level-2 ones
        (Signals(customers=20, compensation_demand=True, injury=True), 1),
    ],
)
def test_grading_table(signals: Signals, level: int) -> None:
    assert grade(signals).level == level


def test_worked_examples_of_the_guide() -> None:
    # product quality, 100+ customers complaining, media exposure → level 1
    assert grade(Signals(customers=120, media=True)).level == 1
    # service failure, 20 customers' orders late, customers demand compensation → level 2
    assert grade(Signals(customers=20, compensation_demand=True)).level == 2
    # special scenario, 1 customer's product faulty, still usable → level 3
    assert grade(Signals(customers=1)).level == 3


def test_level_only_goes_up() -> None:
    assert grade(Signals(customers=1), current=2).level == 2
    assert grade(Signals(customers=1), current=1).level == 1
    assert grade(Signals(customers=150), current=2).level == 1
    assert grade(Signals(customers=1), current=2).reasons[0] == {"code": "stays", "level": 2}


def test_reasons_are_codes_with_their_numbers_said_in_the_readers_language() -> None:
    from playbooks.vocabulary import reason

    reasons = grade(Signals(customers=120, media=True)).reasons
    assert reasons == [{"code": "customers_100", "n": 120}, {"code": "media"}]
    assert [reason(r, "zh") for r in reasons] == ["120 名客户投诉（≥100 名）", "媒体/社交媒体曝光"]
    english = ["120 customers complaining (>= 100)", "media or social-media exposure"]
    assert [reason(r, "en") for r in reasons] == english
    stays = grade(Signals(customers=1), current=2).reasons
    assert [reason(r, "zh") for r in stays] == ["维持二级：等级只升不降", "1 名客户投诉（1–9 名），损失较小"]
    # what an older version stored, in English, reads in Chinese too
    assert reason("12 customers complaining (10-99)", "zh") == "12 名客户投诉（10–99 名）"
    assert reason("level stays 2: a level never goes down", "zh") == "维持二级：等级只升不降"


def test_customer_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        grade(Signals(customers=0))
