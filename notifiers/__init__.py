"""Notices to people, by role, through apprise; every delivery is logged in ``deliveries``.

Public API::

    await notify(kind, roles, context, *, incident_id, lang=None, people=()) -> list[DeliveryResult]
    notify_sync(kind, roles, context, *, incident_id, lang=None, people=()) -> list[DeliveryResult]
    deliveries(incident_id) -> list[dict]           # the log, JSON-ready, oldest first
    render(kind, context, lang=None) -> Rendered    # Rendered(title, text, html); no sending
    NOTICE_KINDS                                    # the kind identifiers below

Who: ``INCIDENT_NOTIFY_CONFIG`` is an apprise YAML file whose tags are role names; a notice for
a role goes to every URL with that tag (see ``roster``); ``people`` named directly (an improvement
action's owner) get it on their own notify URLs from the directory. Unset or missing file: nobody is told
and each role gets a ``no_recipient`` row. A broken file is a ``RosterError`` naming it
(``roster.check()`` raises it, e.g. at service start; ``notify`` logs it as ``failed`` rows).

Templates: ``notifiers/templates/{kind}.{lang}.j2``, lang ``zh`` (default, or INCIDENT_LANG)
or ``en``. Each template defines two blocks: ``{% block title %}`` (one line; whitespace is
collapsed) and ``{% block body %}`` (plain text lines). Shared pieces are included from
``_facts``, ``_due``, ``_todo`` and ``_links``. Rendering runs in a jinja2 sandbox twice: once
without escaping for the text body, once with autoescape for the HTML body (lines joined with
``<br>``; only http(s) links become ``<a>``). Channels whose apprise plugin prefers HTML
(e-mail) get the HTML body; every other channel gets the text body.

Context keys (all optional except ``incident_id``, ``level``, ``category``): ``category_label``,
``summary``, ``customers``, ``status``, ``stage``, ``deadline_kind`` (contact | approval |
progress | postmortem), ``due_at`` (aware datetime or ISO string), ``minutes_left`` (computed
from ``due_at`` when absent), ``old_level``, ``new_level``, ``reasons``, ``solution``,
``solution_label``, ``approved``, ``decided_by``, ``reason``, ``approver_role``, ``score``
(a share such as 0.8 prints as 80%), ``target`` (default: the playbook's), ``round`` (the
follow-up round now required), ``action`` (replaces the template's default "what to do"),
``escalated_from``, ``prefect_url``, ``console_url``. Free-text values are passed through
``mask_text`` before rendering and are never compiled as templates.

Kinds: incident_opened, level_raised, stage_changed, deadline_warning, deadline_missed,
approval_requested, approval_decided, progress_due, resolved, survey_below_target,
postmortem_due, postmortem_overdue, feedback_routed (a suggestion, inquiry or praise for its group),
deadlines_summary (several deadlines of one incident missed in
one sweep: ``missed`` is a list of ``{kind, due_at}``, and the customers' first contacts are one
``{kind: customer_contact, progress}`` item). ``contact_progress`` (``{contacted, customers, overdue}``)
prints as ``首次联系：已联系 37/120，5 个超时`` in every notice once two or more customers are owed a
first contact; ``due_count``: a warning about several customers' contacts at once. A missed
deadline's notice says which step of the escalation chain it is (``escalation_step``, ``repeat``) and
how to acknowledge it (``ack_command``, ``ack_url``; ``_ack``). ``render_for_customer`` renders a
customer's own copy of a progress update (``customer_update``; unmasked, it is theirs alone).

Retries and timeouts: see ``notifiers.channels`` (INCIDENT_NOTIFY_RETRIES, _BACKOFF, _TIMEOUT).
"""

from notifiers.render import NOTICE_KINDS, Rendered, render
from notifiers.roster import RosterError
from notifiers.service import DeliveryResult, deliveries, notify, notify_sync

__all__ = [
    "NOTICE_KINDS",
    "DeliveryResult",
    "Rendered",
    "RosterError",
    "deliveries",
    "notify",
    "notify_sync",
    "render",
]
