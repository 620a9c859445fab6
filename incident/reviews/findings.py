"""Sentences a review states: month-over-month changes, and the quarter's process findings.

Why rules and not prose: leadership reads "本月产品质量类事件增加20%" and acts on it, so every sentence
is computed (direction and percentage from the counts, a finding from a threshold named here) and can be
checked by a test. Each item is data (``code`` + values); ``sentence`` words it in zh or en, so one review
serves both languages. No change sentence when the earlier period had none (no percentage of zero).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from incident.metrics import service as metrics
from playbooks import vocabulary

MISSED_SHARE = 0.20  # a deadline kind missed in more than 20% of its judged deadlines: reconsider it

_ZH = {
    "category_change": "本{period}{what}事件{dir}{pct}（{before} → {now}）",
    "level_change": "本{period}{what}事件{dir}{pct}（{before} → {now}）",
    "total_change": "本{period}事件总数{dir}{pct}（{before} → {now}）",
    "total_same": "本{period}事件总数与上{period}持平（{now}）",
    "most_missed": "超时最多的时限是“{what}”：{missed}/{total} 项超时（{pct}）",
    "reconsider_deadline": "“{what}”时限超时比例 {pct} 超过 20%，建议复核预案中该时限的设置或人手安排",
    "longest_stage": "耗时最长的阶段是“{what}”，中位数 {hours} 小时",
    "response_over_limit": "{what}首次联系中位数 {minutes} 分钟，超过预案时限 {limit} 分钟，"
    "建议复核 contact_within",
    "satisfaction_below": "{what}满意度 {share} 低于目标 {target}，建议复核解决方案与跟进安排",
    "no_findings": "本季度未发现需要调整的流程问题",
}
_EN = {
    "category_change": "{what} incidents {dir} {pct} this {period} ({before} → {now})",
    "level_change": "{what} incidents {dir} {pct} this {period} ({before} → {now})",
    "total_change": "Incidents overall {dir} {pct} this {period} ({before} → {now})",
    "total_same": "Incidents overall unchanged this {period} ({now})",
    "most_missed": 'The deadline missed most is "{what}": {missed} of {total} missed ({pct})',
    "reconsider_deadline": '"{what}" is missed in {pct} of cases, above 20%: reconsider that limit '
    "in the playbooks or its staffing",
    "longest_stage": 'The longest stage is "{what}", median {hours} h',
    "response_over_limit": "{what} first contact median {minutes} min exceeds the playbook's {limit} min: "
    "reconsider contact_within",
    "satisfaction_below": "{what} satisfaction {share} is below the target {target}: review solutions "
    "and follow-up",
    "no_findings": "No process finding calls for a change this quarter",
}
STAGES = {
    "response": {"zh": "识别→首次联系", "en": "identified → first contact"},
    "handling": {"zh": "首次联系→解决", "en": "first contact → resolved"},
    "closing": {"zh": "解决→结案（回访与复盘）", "en": "resolved → closed (follow-up, post-mortem)"},
}


def _change(code: str, key: str, before: int, now: int) -> dict[str, Any] | None:
    if not before:
        return None  # no percentage of nothing
    return {
        "code": code,
        "key": key,
        "before": before,
        "now": now,
        "change": round((now - before) / before, 4),
    }


def changes(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    """Period-over-period changes of the total, each category and each level (a sentence each)."""
    items = [_change("total_change", "all", before["incidents"], now["incidents"])]
    items += [
        _change("category_change", c, before["by_category"][c], v) for c, v in now["by_category"].items()
    ]
    items += [_change("level_change", lv, before["by_level"][lv], v) for lv, v in now["by_level"].items()]
    return [i for i in items if i is not None and (i["change"] != 0 or i["code"] == "total_change")]


def _stages(scope: list[metrics.IncidentFacts], closed: dict[str, Any]) -> dict[str, float | None]:
    spans: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in scope:
        if i.first_contact_at:
            spans["response"].append((i.first_contact_at - i.identified_at).total_seconds() / 3600)
        if i.first_contact_at and i.resolved_at:
            spans["handling"].append((i.resolved_at - i.first_contact_at).total_seconds() / 3600)
        if i.resolved_at and i.id in closed:
            spans["closing"].append((closed[i.id] - i.resolved_at).total_seconds() / 3600)
    return {s: metrics.percentile(v, 0.5) for s, v in spans.items()}


def process(data: dict[str, Any], scope: list[metrics.IncidentFacts]) -> list[dict[str, Any]]:
    """The quarter's process findings: deadlines missed most, the longest stage, settings to reconsider."""
    out: list[dict[str, Any]] = []
    judged = {k: v for k, v in data["deadlines"].items() if v["total"]}
    shares = Counter({k: v["missed"] / v["total"] for k, v in judged.items()})
    if shares and shares.most_common(1)[0][1] > 0:
        kind, share = shares.most_common(1)[0]
        out.append({"code": "most_missed", "key": kind, "share": round(share, 4), **judged[kind]})
    out += [
        {"code": "reconsider_deadline", "key": k, "share": round(s, 4)}
        for k, s in shares.items()
        if s > MISSED_SHARE
    ]
    stages = {k: v for k, v in _stages(scope, data["closed_at"]).items() if v is not None}
    if stages:
        longest = max(stages, key=lambda k: stages[k])
        out.append({"code": "longest_stage", "key": longest, "hours": round(stages[longest], 1)})
    for lv, times in data["by_level_times"].items():
        limit = data["limits"][lv]["contact_minutes"] if "limits" in data else None
        p50 = times["response_minutes_p50"]
        if limit is not None and p50 is not None and p50 > limit:
            out.append({"code": "response_over_limit", "key": lv, "minutes": p50, "limit": round(limit)})
    for lv, row in data["satisfaction"]["by_level"].items():
        if row["met"] is False:
            out.append(
                {"code": "satisfaction_below", "key": lv, "share": row["share"], "target": row["target"]}
            )
    return out or [{"code": "no_findings", "key": ""}]


def _what(item: dict[str, Any], lang: str) -> str:
    code, key = item["code"], item["key"]
    if code == "category_change":
        return vocabulary.label("category", key, lang)
    if code in ("level_change", "response_over_limit", "satisfaction_below"):
        return vocabulary.label("level", int(key), lang)
    if code == "longest_stage":
        return STAGES[key][lang]
    return vocabulary.label("deadline", key, lang) if key else ""


def sentence(item: dict[str, Any], lang: str, period: str = "month") -> str:
    """One item in words: ``{"code": "category_change", "key": "product_quality", "change": 0.2}`` →
    ``本月产品质量类事件增加20%（5 → 6）``."""
    words = _EN if lang == "en" else _ZH
    code = item["code"]
    change = item.get("change")
    if code == "total_change" and change == 0:
        code = "total_same"
    if lang == "en":
        direction = "rose" if (change or 0) > 0 else "fell"
        period_word = period
    else:
        direction = "增加" if (change or 0) > 0 else "减少"
        period_word = "月" if period == "month" else "季度"
    pct = item.get("share") if "share" in item and code != "satisfaction_below" else change
    values = {
        **item,
        "what": _what(item, lang),
        "dir": direction,
        "period": period_word,
        "pct": "" if pct is None else f"{abs(pct):.0%}",
    }
    if code == "satisfaction_below":
        values["share"] = f"{item['share']:.0%}"
        values["target"] = f"{item['target']:.0%}"
    return words[code].format(**values)
