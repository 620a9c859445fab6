"""Words for the codes a document mentions, in Chinese (the guide's own terms) and English.

Why a table here and not in the templates: the same code (a role, a stage, a deadline kind)
appears in all seven records, and the dossier keeps only codes and numbers so that one snapshot
serves both languages. Unknown codes fall back to the code itself — a playbook may add kinds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

LANGS = ("zh", "en")

Table = dict[str, tuple[str, str]]

# 《事件等级判定表》《客户问题信息表》…: the form names of the guide (seed 003, §四(四)4).
RECORD_TITLES: Table = {
    "level_determination": ("事件等级判定表", "Level determination form"),
    "customer_issue": ("客户问题信息表", "Customer issue information form"),
    "cause_analysis": ("原因分析报告", "Cause analysis report"),
    "solution_approval": ("解决方案审批表", "Solution approval form"),
    "resolution_confirmation": ("问题解决确认单", "Resolution confirmation slip"),
    "postmortem": ("复盘报告", "Post-mortem report"),
    "improvement_measures": ("改进措施清单", "Improvement measures list"),
}

LEVELS: Table = {
    "1": ("一级（重大）", "Level 1 (major)"),
    "2": ("二级（较大）", "Level 2 (serious)"),
    "3": ("三级（一般）", "Level 3 (general)"),
}

ROLES: Table = {
    "leadership": ("应急领导小组", "Emergency leadership group"),
    "duty_manager": ("值班经理", "Duty manager"),
    "cs_director": ("客服总监", "Customer-service director"),
    "cs_manager": ("客服经理", "Customer-service manager"),
    "dept_head": ("部门负责人", "Department head"),
    "customer_service": ("客户服务组", "Customer service group"),
    "technical_support": ("技术支持组", "Technical support group"),
    "quality_control": ("质量管控组", "Quality control group"),
    "logistics": ("后勤保障组", "Logistics support group"),
    "pr": ("公关组", "PR group"),
    "legal": ("法务组", "Legal group"),
}

STAGES: Table = {  # where the problem arose (cause analysis)
    "production": ("生产环节", "Production"),
    "service": ("服务环节", "Service"),
    "logistics": ("物流环节", "Logistics"),
    "system": ("系统环节", "System"),
    "external": ("外部因素", "External"),
}

STATUSES: Table = {  # the four stages of an incident (domain.md §5) + closed
    "response": ("响应启动", "Response start"),
    "handling": ("现场处置", "On-site handling"),
    "resolution": ("问题解决", "Resolution"),
    "follow_up": ("后续跟进", "Follow-up"),
    "closed": ("已结案", "Closed"),
}

CHANNELS: Table = {
    "phone": ("电话", "Phone"),
    "app": ("APP", "App"),
    "web": ("网页表单", "Web form"),
    "email": ("电子邮件", "E-mail"),
    "social": ("社交媒体", "Social media"),
    "store": ("线下门店", "Store visit"),
    "internal": ("内部报警/员工反馈", "Internal alarm / employee report"),
}

FEEDBACK_KINDS: Table = {
    "complaint": ("投诉", "Complaint"),
    "suggestion": ("建议", "Suggestion"),
    "inquiry": ("咨询", "Inquiry"),
    "praise": ("表扬", "Praise"),
    "alarm": ("内部报警", "Internal alarm"),
}

MOODS: Table = {
    "agitated": ("激动", "Agitated"),
    "calm": ("平静", "Calm"),
    "anxious": ("焦虑", "Anxious"),
}

RESULTS: Table = {  # confirmation results
    "satisfied": ("满意", "Satisfied"),
    "neutral": ("一般", "Neutral"),
    "unsatisfied": ("不满意", "Unsatisfied"),
}

SOLUTION_STATUSES: Table = {
    "pending": ("待审批", "Awaiting approval"),
    "approved": ("批准", "Approved"),
    "rejected": ("驳回", "Rejected"),
}

DEADLINE_KINDS: Table = {
    "contact": ("首次联系客户", "First customer contact"),
    "approval": ("方案审批", "Solution approval"),
    "progress": ("向客户通报进度", "Progress update to the customer"),
    "postmortem": ("复盘会议与报告", "Post-mortem meeting and report"),
}

DEADLINE_STATES: Table = {
    "pending": ("进行中", "Pending"),
    "warned": ("已预警", "Warned"),
    "met": ("按时完成", "Met"),
    "missed": ("超时", "Missed"),
    "cancelled": ("已取消", "Cancelled"),
}

SEVERITY: Table = {
    "media": ("媒体/社交媒体曝光", "Media or social-media exposure"),
    "injury": ("人身伤害", "Personal injury"),
    "property_loss": ("财产损失", "Property loss"),
    "brand_risk": ("品牌声誉重大风险", "Serious brand risk"),
    "outage": ("区域内服务中断", "Regional service outage"),
    "big_loss": ("客户损失较大", "Large loss for the customer"),
    "compensation_demand": ("客户要求赔偿", "Customer demands compensation"),
}

EVENTS: Table = {
    "identified": ("事件识别", "Identified"),
    "feedback_joined": ("新反馈并入", "Feedback joined"),
    "level_raised": ("等级上调", "Level raised"),
    "stage_entered": ("进入阶段", "Stage entered"),
    "contacted": ("联系客户", "Customer contacted"),
    "first_contact": ("首次联系客户", "First customer contact"),
    "measure_taken": ("采取临时措施", "Temporary measure taken"),
    "cause_recorded": ("原因查明", "Cause found"),
    "solution_proposed": ("提出解决方案", "Solution proposed"),
    "solution_approved": ("方案获批", "Solution approved"),
    "solution_rejected": ("方案被驳回", "Solution rejected"),
    "approval_refused": ("越权审批被拒", "Approval refused (wrong role)"),
    "resolved": ("问题解决", "Resolved"),
    "confirmed": ("客户确认", "Customer confirmed"),
    "survey_recorded": ("满意度调查", "Satisfaction survey"),
    "follow_up_round": ("再次跟进", "Another follow-up round"),
    "deadline_warned": ("期限预警", "Deadline warning"),
    "deadline_missed": ("期限超时", "Deadline missed"),
    "escalated": ("升级上报", "Escalated"),
    "postmortem_rendered": ("生成复盘报告", "Post-mortem rendered"),
    "run_cancelled": ("流程运行被取消", "Flow run cancelled"),
    "closed": ("结案", "Closed"),
}

DUTIES: Table = {
    "contact": (
        "首次联系客户（道歉、说明、询问需求、承诺时间）",
        "First contact with the customer",
    ),
    "progress": ("向客户通报进度", "Progress updates to the customer"),
    "measure": ("采取临时措施", "Temporary measure"),
    "cause": ("原因分析", "Root-cause analysis"),
    "proposal": ("提出解决方案", "Propose the solution"),
    "approval": ("审批解决方案", "Approve the solution"),
    "confirmation": ("客户确认解决结果", "Customer confirmation of the result"),
    "survey": ("满意度调查", "Satisfaction survey"),
    "postmortem": ("复盘会议与报告", "Post-mortem meeting and report"),
}

OUTCOMES: Table = {
    "done": ("已完成", "Done"),
    "pending": ("未完成", "Not done yet"),
    "proposed": ("已提出", "Proposed"),
    "approved": ("批准", "Approved"),
    "rejected": ("驳回", "Rejected"),
    "satisfied": ("满意", "Satisfied"),
    "neutral": ("一般", "Neutral"),
    "unsatisfied": ("不满意", "Unsatisfied"),
    "target_met": ("达标", "Target met"),
    "below_target": ("未达标", "Below target"),
}

TIMINGS: Table = {
    "on_time": ("按时", "On time"),
    "late": ("超时", "Late"),
    "overdue": ("已逾期未完成", "Overdue, not done"),
    "open": ("未到期", "Not yet due"),
}

AREAS: Table = {
    "process": ("流程优化", "Process"),
    "product": ("产品改进", "Product"),
    "training": ("员工培训", "Training"),
    "resources": ("资源调整", "Resources"),
}

SOURCES: Table = {
    "contact_late": ("首次联系超时", "Late first contact"),
    "deadline_missed": ("期限超时", "Missed deadline"),
    "rejections": ("方案被驳回", "Rejected solutions"),
    "direct_cause": ("直接原因", "Direct cause"),
    "root_cause": ("根本原因", "Root cause"),
    "survey_score": ("满意度评分", "Survey scores"),
    "suggestion": ("客户建议", "Customer suggestion"),
    "refused_approval": ("越权审批", "Approval by the wrong role"),
}

BOOLS: Table = {"true": ("是", "Yes"), "false": ("否", "No")}

DOMAINS: dict[str, Table] = {
    "record": RECORD_TITLES,
    "level": LEVELS,
    "role": ROLES,
    "stage": STAGES,
    "status": STATUSES,
    "channel": CHANNELS,
    "feedback_kind": FEEDBACK_KINDS,
    "mood": MOODS,
    "result": RESULTS,
    "solution_status": SOLUTION_STATUSES,
    "deadline": DEADLINE_KINDS,
    "deadline_state": DEADLINE_STATES,
    "severity": SEVERITY,
    "event": EVENTS,
    "duty": DUTIES,
    "outcome": OUTCOMES,
    "timing": TIMINGS,
    "area": AREAS,
    "source": SOURCES,
    "bool": BOOLS,
}


def label(domain: str, code: object, lang: str) -> str:
    """The word for ``code`` in ``lang``; the code itself when the table has none."""
    if code is None or code == "":
        return ""
    key = str(code).lower() if isinstance(code, bool) else str(code)
    pair = DOMAINS[domain].get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def roles(codes: Iterable[str] | str | None, lang: str) -> str:
    """Several roles, e.g. the ``escalated_to`` column ("duty_manager,leadership")."""
    if not codes:
        return ""
    if isinstance(codes, str):
        codes = [c for c in re.split(r"[\s,;]+", codes) if c]
    sep = ", " if lang == "en" else "、"
    return sep.join(label("role", c, lang) for c in codes)


# Level reasons are produced in English by incident.grading; these patterns give the guide's words.
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\d+) customers complaining \(>= 100\)$"), "{0} 名客户投诉（≥100 名）"),
    (re.compile(r"^media or social-media exposure$"), "媒体/社交媒体曝光"),
    (re.compile(r"^personal injury$"), "人身伤害"),
    (re.compile(r"^property loss$"), "财产损失"),
    (re.compile(r"^serious brand risk$"), "品牌声誉面临重大风险"),
    (re.compile(r"^(\d+) customers complaining \(10-99\)$"), "{0} 名客户投诉（10–99 名）"),
    (re.compile(r"^regional service outage$"), "区域内服务中断"),
    (re.compile(r"^large loss for the customer$"), "客户损失较大"),
    (re.compile(r"^customer demands compensation$"), "客户要求赔偿"),
    (
        re.compile(r"^(\d+) customer\(s\) complaining \(1-9\), minor loss$"),
        "{0} 名客户投诉（1–9 名），损失较小",
    ),
    (re.compile(r"^level stays (\d+): a level never goes down$"), "维持{0}级：等级只升不降"),
]


def reason(text: str, lang: str) -> str:
    if lang == "en":
        return text
    for pattern, zh in _REASONS:
        match = pattern.match(text.strip())
        if match:
            return zh.format(*match.groups())
    return text


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
