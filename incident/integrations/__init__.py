"""The systems around the process (issue 15): tickets, logistics, alarms, public opinion (registry.py)."""

# The ``deliveries.notice`` kinds the adapters log besides the notices (``/metrics`` lists them at 0)
WRITE_BACKS = ("zendesk_note", "freshdesk_note", "kb_page")  # kb_page: incident.knowledge
