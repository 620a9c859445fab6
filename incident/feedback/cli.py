"""``incident report``: one feedback from a terminal, validated with the API's own model first."""

from __future__ import annotations

from typing import Annotated

import typer

from incident.terminal import JsonOpt, build, call, emit

app = typer.Typer()


@app.command()
def report(
    category: Annotated[
        str | None, typer.Option(help="product_quality | service_failure | special_scenario")
    ] = None,
    summary: Annotated[str | None, typer.Option(help="what the customer says")] = None,
    customer: str | None = None,
    contact: Annotated[
        str | None, typer.Option(help="phone or e-mail (kept internal, always masked)")
    ] = None,
    order: str | None = None,
    channel: Annotated[str, typer.Option(help="phone app web email social store internal")] = "phone",
    kind: Annotated[str, typer.Option(help="complaint suggestion inquiry praise alarm")] = "complaint",
    product_model: str | None = None,
    serial: str | None = None,
    batch: str | None = None,
    service: Annotated[str | None, typer.Option(help="the failing service (service failures)")] = None,
    region: str | None = None,
    cause: Annotated[str | None, typer.Option(help="the outside cause (special scenarios)")] = None,
    purchase_date: str | None = None,
    occurred_at: str | None = None,
    impact: str | None = None,
    mood: Annotated[str | None, typer.Option(help="agitated calm anxious")] = None,
    customers: Annotated[int, typer.Option(help="customers this report speaks for")] = 1,
    media: bool = False,
    injury: bool = False,
    property_loss: bool = False,
    brand_risk: bool = False,
    outage: Annotated[str | None, typer.Option(help="regional")] = None,
    big_loss: bool = False,
    compensation_demand: bool = False,
    as_json: JsonOpt = False,
) -> None:
    """Record one feedback, grade it, open or join its incident, start its flow run."""
    fields = {k: v for k, v in locals().items() if k != "as_json"}  # first: before any local name
    from incident.feedback.service import FeedbackIn

    body = build(FeedbackIn, as_json, **fields)
    data = call(as_json, "POST", "/api/feedback", json=body.model_dump(exclude_none=True))
    emit(data, as_json)
