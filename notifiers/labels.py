"""Localized names for the identifiers a notice mentions (levels, roles, deadlines, stages).

Why here and not in the templates: the same words appear in many templates, and callers may
pass their own localized labels (``category_label``, ``solution_label``) which win over these.
"""

from __future__ import annotations

LANGS = ("zh", "en")

LEVELS: dict[str, dict[int, str]] = {
    "zh": {1: "一级（重大）", 2: "二级（较大）", 3: "三级（一般）"},
    "en": {1: "Level 1 (major)", 2: "Level 2 (serious)", 3: "Level 3 (general)"},
}

LEVELS_SHORT: dict[str, dict[int, str]] = {
    "zh": {1: "一级", 2: "二级", 3: "三级"},
    "en": {1: "L1", 2: "L2", 3: "L3"},
}

CATEGORIES: dict[str, dict[str, str]] = {
    "zh": {
        "product_quality": "产品质量类",
        "service_failure": "服务失误类",
        "special_scenario": "特殊场景类",
    },
    "en": {
        "product_quality": "Product quality",
        "service_failure": "Service failure",
        "special_scenario": "Special scenario",
    },
}

ROLES: dict[str, dict[str, str]] = {
    "zh": {
        "leadership": "应急领导小组",
        "duty_manager": "值班经理",
        "cs_director": "客服总监",
        "cs_manager": "客服经理",
        "dept_head": "部门负责人",
        "customer_service": "客服组",
        "technical_support": "技术支持组",
        "quality_control": "质量管控组",
        "logistics": "后勤保障组",
        "pr": "公关组",
        "legal": "法务组",
    },
    "en": {
        "leadership": "emergency leadership group",
        "duty_manager": "duty manager",
        "cs_director": "customer-service director",
        "cs_manager": "customer-service manager",
        "dept_head": "department head",
        "customer_service": "customer service group",
        "technical_support": "technical support group",
        "quality_control": "quality control group",
        "logistics": "logistics support group",
        "pr": "PR group",
        "legal": "legal group",
    },
}

DEADLINES: dict[str, dict[str, str]] = {
    "zh": {
        "contact": "首次联系客户时限",
        "approval": "方案审批时限",
        "progress": "向客户通报进度时限",
        "postmortem": "复盘会议与报告时限",
    },
    "en": {
        "contact": "first customer contact deadline",
        "approval": "solution approval deadline",
        "progress": "customer progress update deadline",
        "postmortem": "post-mortem deadline",
    },
}

STAGES: dict[str, dict[str, str]] = {
    "zh": {
        "response": "响应启动",
        "response_start": "响应启动",
        "onsite": "现场处置",
        "on_site": "现场处置",
        "handling": "现场处置",
        "resolution": "问题解决",
        "follow_up": "后续跟进",
        "followup": "后续跟进",
        "closed": "已结案",
    },
    "en": {
        "response": "response start",
        "response_start": "response start",
        "onsite": "on-site handling",
        "on_site": "on-site handling",
        "handling": "on-site handling",
        "resolution": "resolution",
        "follow_up": "follow-up",
        "followup": "follow-up",
        "closed": "closed",
    },
}

# Domain defaults (domain.md §4), used only when the playbook cannot be read.
CONTACT_MINUTES = {1: 30, 2: 60, 3: 120}
POSTMORTEM_HOURS = {1: 24, 2: 48, 3: 72}
SATISFACTION_TARGET = {1: 0.90, 2: 0.85, 3: 0.80}


def lookup(table: dict[str, dict[str, str]], lang: str, key: object) -> str:
    """The label for ``key`` in ``lang``; the identifier itself when it has none."""
    if key is None:
        return ""
    return table.get(lang, {}).get(str(key), str(key))
