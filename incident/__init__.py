"""The application around the flows: intake, human actions, views, CLI, HTTP API and the service."""
