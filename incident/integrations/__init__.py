"""The systems around the process (issue 15): Zendesk, SF Express, internal alarms; see registry.py."""
