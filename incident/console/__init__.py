"""The web console served by ``incident serve`` at ``/`` (interface.md): board, incident page, post-mortem
reader and monthly chart, rendered on the server with jinja2.

Why server-rendered and in the same app as the API: no front-end build step, one token for both (the
login form turns it into a revocable server-side session, whose secret the HttpOnly ``incident_session``
cookie carries and the API accepts too: ``auth.py``), and every
form goes through the same steps (``incident.response.steps``) and ``flows.waiting.try_deliver`` as the
CLI, so the console cannot approve anything the CLI would refuse.
"""

from incident.console.app import install

__all__ = ["install"]
