"""The sentences of the documents in Chinese and English; the words for codes come from the vocabulary.

Why codes and not words in the dossier: the same code (a role, a stage, a deadline kind) appears in all
seven records, and one snapshot serves both languages. The words are ``playbooks/vocabulary.yaml``'s, the
product's one vocabulary; unknown codes fall back to the code itself — a playbook may add kinds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from playbooks import vocabulary

LANGS = vocabulary.LANGS


def label(domain: str, code: object, lang: str) -> str:
    """The word for ``code`` in ``lang`` (``playbooks/vocabulary.yaml``); the code itself when it has none."""
    return vocabulary.label(domain, code, lang)


def roles(codes: Iterable[str] | str | None, lang: str) -> str:
    """Several roles, e.g. the ``escalated_to`` column ("duty_manager,leadership")."""
    if not codes:
        return ""
    if isinstance(codes, str):
        codes = [c for c in re.split(r"[\s,;]+", codes) if c]
    sep = ", " if lang == "en" else "、"
    return sep.join(label("role", c, lang) for c in codes)


# Findings (How) and improvement points: one message per code. Parameters are formatted by
# ``format_params`` according to their names (see there), so the dossier stays language-free.
MESSAGES: dict[str, tuple[str, str]] = {
    # What
    "overview": (
        "{category}事件：{summary}。共 {customers} 名客户受影响，判定为{level}。",
        "{category} incident: {summary}. {customers} customer(s) affected; graded {level}.",
    ),
    "overview_products": ("涉及产品/批次：{products}。", "Products/batches concerned: {products}."),
    "overview_services": ("涉及服务/地区：{services}。", "Services/regions concerned: {services}."),
    # went well
    "contact_on_time": (
        "及时联系客户：识别后 {elapsed_min}首次联系（时限 {limit_min}）",
        "Customer contacted on time: first contact {elapsed_min} after identification (limit {limit_min})",
    ),
    "measure_taken": (
        "识别后 {elapsed_min}采取临时措施（{label}），缓解了客户困扰",
        "Temporary measure ({label}) taken {elapsed_min} after identification",
    ),
    "approval_on_time": (
        "第 {round} 轮方案在 {elapsed_min}内完成审批（时限 {limit_min}）",
        "Round {round} solution decided in {elapsed_min} (limit {limit_min})",
    ),
    "legal_reviewed": (
        "{label}方案经法务审核后批准，符合《产品质量法》要求",
        "The {label} solution was legally reviewed before approval",
    ),
    "deadlines_all_met": (
        "全部 {count} 项期限均按时完成",
        "All {count} deadlines were met",
    ),
    "customer_contacts_on_time": (
        "全部 {customers} 位客户均在各自加入后的时限内首次联系",
        "All {customers} customers had their first contact within the window from when they joined",
    ),
    "satisfaction_met": (
        "满意度 {share} 达到目标 {target}（第 {round} 轮）",
        "Satisfaction {share} met the target {target} (round {round})",
    ),
    "confirmed_satisfied": (
        "客户确认对处理结果满意",
        "The customer confirmed being satisfied with the result",
    ),
    # went badly
    "contact_late": (
        "首次联系超时 {late_min}：识别后 {elapsed_min}才联系客户（时限 {limit_min}）",
        "First contact was {late_min} late: {elapsed_min} after identification (limit {limit_min})",
    ),
    "contact_overdue": (
        "至今仍未联系客户，已超时 {late_min}（时限 {limit_min}）",
        "The customer has still not been contacted: {late_min} overdue (limit {limit_min})",
    ),
    "customer_contacts_late": (
        "{late} 位客户的首次联系超时（已联系 {contacted}/{customers} 位，{overdue} 位至今超时未联系）",
        "{late} customers' first contacts were late (contacted {contacted}/{customers}; {overdue} still"
        " overdue)",
    ),
    "approval_late": (
        "第 {round} 轮方案审批耗时 {elapsed_min}，超出时限 {limit_min}",
        "Round {round} approval took {elapsed_min}, over the {limit_min} limit",
    ),
    "deadline_missed_late": (
        "「{kind}」期限超时：截止 {due_at}，延迟 {late_min}才完成；已升级至：{to}",
        "Missed deadline \u201c{kind}\u201d: due {due_at}, done {late_min} late; escalated to: {to}",
    ),
    "deadline_missed_open": (
        "「{kind}」期限超时：截止 {due_at}，至今未完成；已升级至：{to}",
        "Missed deadline \u201c{kind}\u201d: due {due_at}, still not done; escalated to: {to}",
    ),
    "solution_rejected": (
        "第 {round} 轮方案（{label}）被 {by}（{role}）驳回，理由：{reason}",
        "Round {round} solution ({label}) rejected by {by} ({role}): {reason}",
    ),
    "legal_review_missing": (
        "{label}方案未经法务审核即获批准",
        "The {label} solution was approved without legal review",
    ),
    "follow_up_needed": (
        "第 {round} 轮满意度 {share} 低于目标 {target}，需再次跟进",
        "Round {round} satisfaction {share} was below the target {target}: another follow-up round",
    ),
    "satisfaction_below": (
        "最终满意度 {share} 仍未达到目标 {target}",
        "Final satisfaction {share} is still below the target {target}",
    ),
    "confirmed_not_satisfied": (
        "第 {round} 轮客户确认结果为「{result}」",
        "Round {round}: the customer confirmed the result as \u201c{result}\u201d",
    ),
    "approval_refused": (
        "{count} 次由无审批权限的角色尝试审批，被系统拒绝",
        "{count} approval attempt(s) by a role without authority were refused",
    ),
    "cause_pending": ("尚未完成原因分析", "The cause has not been analysed yet"),
    # improvement points
    "imp_contact": (
        "确保 {limit_min}内首次联系客户（本次超时 {late_min}）：完善值班排班与到期预警",
        "Contact customers within {limit_min} (this time {late_min} late): duty roster and earlier warnings",
    ),
    "imp_customer_contacts": (
        "客户大量涌入时按加入顺序逐一联系（本次 {late} 位超时）：增派客服、分批认领客户",
        "When customers pour in, contact each in the order they joined ({late} late this time): more"
        " agents, customers claimed in batches",
    ),
    "imp_approval": (
        "为{role}设置后备审批人，确保方案在 {limit_min}内审批（本次超时 {late_min}）",
        "Name a stand-in for the {role} so solutions are decided within {limit_min}"
        " (this time {late_min} late)",
    ),
    "imp_progress": (
        "按时向客户通报进度（每 {limit_min}一次）：设置定时提醒",
        "Send progress updates on time (every {limit_min}): scheduled reminders",
    ),
    "imp_postmortem": (
        "在问题解决后 {limit_min}内完成复盘会议与报告",
        "Hold the post-mortem within {limit_min} of the resolution",
    ),
    "imp_deadline": ("确保「{kind}」按时完成", "Meet the \u201c{kind}\u201d deadline"),
    "imp_rejections": (
        "方案提交前按审批标准预审（本次被驳回 {count} 次：{reasons}）",
        "Pre-check solutions against the approver's criteria ({count} rejected: {reasons})",
    ),
    "imp_refused": (
        "明确各级方案的审批人（{role}），避免越权审批",
        "Make clear who approves at this level ({role})",
    ),
    "imp_direct": (
        "弥补直接原因暴露的环节漏洞：{direct}",
        "Close the gap the direct cause exposed: {direct}",
    ),
    "imp_root_production": (
        "针对根本原因改进产品与供应链（如更换供应商、加强来料检验）：{root}",
        "Fix the root cause in the product and supply chain"
        " (e.g. supplier audit, incoming inspection): {root}",
    ),
    "imp_root_service": (
        "针对根本原因开展员工培训：{root}",
        "Train staff on the root cause: {root}",
    ),
    "imp_root_logistics": (
        "调整物流与备用资源：{root}",
        "Adjust logistics and spare resources: {root}",
    ),
    "imp_root_system": (
        "增加系统容量与冗余：{root}",
        "Add system capacity and redundancy: {root}",
    ),
    "imp_root_external": (
        "为外部因素储备应急资源与预案：{root}",
        "Keep emergency resources and a plan for outside causes: {root}",
    ),
    "imp_root_other": ("消除根本原因：{root}", "Remove the root cause: {root}"),
    "imp_speed": (
        "提升响应速度（未达标轮次的评分 {score}/5）：增加客服人手与备用资源",
        "Respond faster (score {score}/5 in the rounds below target): more staff and spare resources",
    ),
    "imp_result_product": (
        "改进产品与维修质量（未达标轮次的结果评分 {score}/5）",
        "Improve the product and repair quality (result score {score}/5 in the rounds below target)",
    ),
    "imp_result_process": (
        "改进解决方案本身（未达标轮次的结果评分 {score}/5）",
        "Improve the solution itself (result score {score}/5 in the rounds below target)",
    ),
    "imp_attitude": (
        "开展客服沟通与情绪管理培训（未达标轮次的态度评分 {score}/5）",
        "Communication and emotion-management training (attitude score {score}/5 in the rounds below target)",
    ),
    "imp_suggestion": ("客户建议：{text}", "Customer suggestion: {text}"),
}


Formatter = Callable[[str, object], str]


def message(code: str, params: Mapping[str, object], lang: str, fmt: Formatter) -> str:
    """One finding or improvement point in ``lang``; ``fmt(name, value)`` formats each parameter.

    ``str.format`` only reads the message pattern (ours); parameter values — which may be
    customer text — are inserted as plain strings and never interpreted.
    """
    pair = MESSAGES.get(code)
    if pair is None:
        return code
    pattern = pair[1] if lang == "en" else pair[0]
    return pattern.format(**{name: fmt(name, value) for name, value in params.items()})
