"""The errors a person can cause, each with the HTTP status it maps to (the CLI exits 2 on all)."""


class ActionError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ActionError):
    status = 422


class NotFound(ActionError):
    status = 404


class Conflict(ActionError):
    """The incident is not at a point where this action makes sense (e.g. approve with no proposal)."""

    status = 409


class Forbidden(ActionError):
    """The person's role may not do this (e.g. approve a level-1 solution without leadership)."""

    status = 403


class SettingsError(ValueError):
    """An ``INCIDENT_*`` variable that cannot be used; the message names it and says why (CLI: exit 2)."""


class Unavailable(ActionError):
    """Something this service needs is missing for now (a file, a vendor): 503, worth retrying later."""

    status = 503
