"""The errors a person can cause, each with the HTTP status it maps to (the CLI exits 2 on all)."""


class ActionError(Exception):
    """``message`` is English, word for word a phrase of the vocabulary's ``error`` domain; ``code()`` and
    ``words(lang)`` read it back (the API answers in the asker's language, the console in its own)."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def code(self) -> str | None:
        """The message's code in ``playbooks/vocabulary.yaml`` (``error``), None for one it lacks."""
        from playbooks import vocabulary

        found = vocabulary.parse("error", self.message)
        return found[0] if found else None

    def words(self, lang: str) -> str:
        """The message in ``lang`` (the English as raised, unchanged, for ``en``)."""
        from playbooks import vocabulary

        return vocabulary.translate("error", self.message, lang)


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
