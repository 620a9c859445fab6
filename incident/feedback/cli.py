"""``incident report``: one feedback from a terminal, validated by the API's own model (``FeedbackIn``)."""

from __future__ import annotations

from incident.terminal import Args, Group, call, emit, flag, opt

commands = Group()

TEXT = {  # the report's text fields and what they take (the API's FeedbackIn checks them)
    "category": "product_quality | service_failure | special_scenario",
    "summary": "what the customer says",
    "customer": "the customer's name",
    "contact": "phone or e-mail (kept internal, always masked)",
    "order": None,
    "evidence": "photos, tickets or links that back it up",
    "product_model": None,
    "serial": None,
    "batch": None,
    "service": "the failing service (service failures)",
    "region": None,
    "cause": "the outside cause (special scenarios)",
    "purchase_date": None,
    "occurred_at": None,
    "impact": None,
    "mood": "agitated calm anxious",
    "outage": "regional",
}
FLAGS = ("media", "injury", "property_loss", "brand_risk", "big_loss", "compensation_demand")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


@commands.command(
    "report",
    *(opt(_option(name), help=help) for name, help in TEXT.items()),
    opt("--channel", default="phone", help="phone app web email social store internal"),
    opt("--kind", default="complaint", help="complaint suggestion inquiry praise alarm"),
    opt("--customers", type=int, default=1, help="customers this report speaks for"),
    *(flag(_option(name)) for name in FLAGS),
    opt(
        "--consent-updates", dest="consent", action="store_true", default=None,
        help="the customer agrees to receive progress updates (e-mail or SMS, on the channel they came by)",
    ),
)  # fmt: skip
def report(a: Args) -> None:
    """Record one feedback, grade it, open or join its incident, start its flow run."""
    names = (*TEXT, "channel", "kind", "customers", *FLAGS, "consent")
    body = {name: getattr(a, name) for name in names if getattr(a, name) is not None}
    emit(call(a.json, "POST", "/api/feedback", json=body), a.json)
