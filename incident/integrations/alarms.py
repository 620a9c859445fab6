"""Internal alarms: the logistics, quality and ticket systems report a problem as an alarm.

Why a model of its own over ``FeedbackIn``: an alarm carries the same fields (the playbooks correlate
and grade it as any report), plus the system it came from; its kind is always ``alarm`` (it opens
or joins an incident whatever it says, domain.md §3) and its channel ``internal``.
"""

from __future__ import annotations

from typing import Literal

from incident.feedback.inputs import MAX_TEXT, FeedbackIn
from incident.integrations.tickets import CUT

SOURCES = ("logistics", "quality", "ticket")


class AlarmIn(FeedbackIn):
    """``POST /api/alarms``: ``source``, ``category``, ``summary`` and any feedback field."""

    source: Literal["logistics", "quality", "ticket"]
    kind: Literal["alarm"] = "alarm"
    channel: Literal["internal"] = "internal"

    def feedback(self) -> FeedbackIn:
        """The report intake records; the summary names the source system (people read it there), cut
        to what intake stores when the prefix makes a summary near the limit too long."""
        fields = self.model_dump(exclude={"source"}, exclude_unset=True)
        summary = f"[{self.source}] {self.summary}"
        if len(summary) > MAX_TEXT:
            summary = summary[: MAX_TEXT - len(CUT)] + CUT
        fields.update(kind="alarm", channel="internal", summary=summary)
        return FeedbackIn(**fields)
