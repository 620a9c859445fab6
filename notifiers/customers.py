"""A progress update to one customer, through apprise, on the channel they came from.

Why apprise here too: the operator configures one base URL per way of reaching customers
(``INCIDENT_CUSTOMER_MAIL_URL``, ``INCIDENT_CUSTOMER_SMS_URL``) in the form apprise documents for the
provider, and apprise does the rest (SMTP, an SMS vendor's API, a company gateway). The customer's
address is added the way apprise takes a target for those services: ``to=`` (mailto/mailtos, and most
SMS plugins: twilio, sinch, clicksend …, https://github.com/caronc/apprise/wiki), or in place of
``{to}`` where the operator put it, e.g. a gateway of their own behind apprise's generic JSON
notification (``json://sms.example.com/send?:to={to}``: a ``:`` argument becomes a field of the
posted JSON, https://github.com/caronc/apprise/wiki/Notify_Custom_JSON).

The address is the customer's own and the message is for them: neither is masked in what is sent.
What staff read (the delivery log, errors) names the address masked only.
"""

from __future__ import annotations

from urllib.parse import quote

from incident.feedback.privacy import mask_contact, mask_text
from notifiers.channels import Outcome, deliver
from notifiers.render import Rendered

TO = "{to}"


def target_url(base: str, address: str) -> str:
    """The base URL with the customer's address as its target: in place of ``{to}``, else ``to=``."""
    quoted = quote(address.strip(), safe="@+")
    if TO in base:
        return base.replace(TO, quoted)
    return f"{base}{'&' if '?' in base else '?'}to={quoted}"


def shown(via: str, address: str) -> str:
    """How the delivery log names a customer's address: ``email:l***@example.com``, ``sms:138****5678``."""
    return f"{via}:{mask_contact(address)}"


async def send(base: str, via: str, address: str, message: Rendered) -> Outcome:
    """Send with the notices' retries and timeouts; never raises, and its error names no address."""
    outcome = await deliver(target_url(base, address), shown(via, address), message)
    if outcome.error is None:
        return outcome
    error = outcome.error.replace(address.strip(), mask_contact(address))
    return Outcome(outcome.ok, outcome.attempts, mask_text(error), outcome.sent_at)
