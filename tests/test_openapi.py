"""``/openapi.json`` is a valid OpenAPI document that declares what the API really does.

The bearer scheme (the Authorize button of /docs), a typed response model per JSON route, the error
model on every route, and the media types of documents and charts; and the bodies the live service
answers fit the models it declares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from incident.api import schemas
from incident.api.app import create_app
from tests.conftest import Service

DOCUMENTS = (
    "/api/incidents/{incident_id}/postmortem",
    "/api/incidents/{incident_id}/records/{kind}",
    "/api/reviews/monthly",
    "/api/reviews/quarterly",
)
CHARTS = ("/api/metrics/chart.png", "/api/export")  # binary bodies (the export is a zip)
# Signed by their vendor (or a shared secret) instead of a bearer token (incident/integrations/views.py)
WEBHOOKS = ("/api/integrations/zendesk", "/api/integrations/sf", "/api/integrations/freshdesk")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app("test-token").openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # raises with the first violation


def test_bearer_scheme_on_every_route(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, op in operations(spec):
        expected = None if path in WEBHOOKS else [{"HTTPBearer": []}]
        assert op.get("security") == expected, f"{method.upper()} {path}"
    assert scheme["description"] == "INCIDENT_API_TOKEN, or a person's token"


def test_every_route_documents_its_errors(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        for status in ("401", "403", "404", "409", "413", "422", "503"):
            body = op["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorOut"}, f"{method.upper()} {path} {status}"
    error = spec["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["error"] and error["properties"]["error"]["type"] == "string"


def test_json_routes_have_typed_models(spec: dict[str, Any]) -> None:
    expected = {
        ("/api/feedback", "post", "202"): "FeedbackAccepted",
        ("/api/feedback/{feedback_id}", "get", "200"): "FeedbackStatus",
        ("/api/incidents", "get", "200"): "IncidentList",
        ("/api/incidents/{incident_id}", "get", "200"): "IncidentDetail",
        ("/api/incidents/{incident_id}/contact", "post", "200"): "ContactOut",
        ("/api/incidents/{incident_id}/measure", "post", "200"): "MeasureOut",
        ("/api/incidents/{incident_id}/cause", "post", "200"): "CauseOut",
        ("/api/incidents/{incident_id}/propose", "post", "200"): "ProposeOut",
        ("/api/incidents/{incident_id}/approve", "post", "200"): "ApproveOut",
        ("/api/incidents/{incident_id}/confirm", "post", "200"): "ConfirmOut",
        ("/api/incidents/{incident_id}/survey", "post", "200"): "SurveyOut",
        ("/api/incidents/{incident_id}/ack", "post", "200"): "AckOut",
        ("/api/incidents/{incident_id}/notifications", "get", "200"): "NotificationsOut",
        ("/api/incidents/{incident_id}/records", "get", "200"): "RecordsOut",
        ("/api/metrics", "get", "200"): "MetricsOut",
        ("/api/people", "get", "200"): "PeopleOut",
        ("/api/people", "post", "201"): "PersonAdded",
        ("/api/people/import", "post", "201"): "PeopleAdded",
        ("/api/people/{name}", "delete", "200"): "PersonRemoved",
        ("/api/people/{name}", "patch", "200"): "PersonUpdated",
        ("/api/audit", "get", "200"): "AuditOut",
        ("/api/audit/{incident_id}", "get", "200"): "AuditOut",
        ("/api/incidents/{incident_id}/meeting", "post", "200"): "MeetingOut",
        ("/api/incidents/{incident_id}/signoff", "post", "200"): "SignoffOut",
        ("/api/actions", "get", "200"): "ActionsOut",
        ("/api/incidents/{incident_id}/actions", "get", "200"): "ActionsOut",
        ("/api/incidents/{incident_id}/actions", "post", "201"): "ActionsOut",
        ("/api/actions/{action_id}/close", "post", "200"): "ActionRow",
        ("/api/incidents/{incident_id}/reveal", "post", "200"): "RevealOut",
        ("/api/deputies", "get", "200"): "DeputiesOut",
        ("/api/deputies", "post", "201"): "DeputyOut",
        ("/api/deputies/{deputy_id}", "delete", "200"): "DeputyOut",
        ("/api/tokens", "get", "200"): "ScopedTokensOut",
        ("/api/tokens", "post", "201"): "ScopedTokenAdded",
        ("/api/tokens/{name}", "delete", "200"): "PersonRemoved",
        ("/api/rotas", "get", "200"): "ShiftsOut",
        ("/api/rotas", "post", "201"): "ShiftOut",
        ("/api/rotas/import", "post", "201"): "ShiftsOut",
        ("/api/rotas/now", "get", "200"): "OnDutyOut",
        ("/api/rotas/{shift_id}", "delete", "200"): "ShiftOut",
        ("/api/alarms", "post", "202"): "AlarmAccepted",
        ("/api/integrations/zendesk", "post", "202"): "TicketAccepted",
        ("/api/integrations/sf", "post", "200"): "RoutesAccepted",
        ("/api/integrations/freshdesk", "post", "202"): "TicketAccepted",
        ("/api/integrations/jd", "post", "201"): "WaybillWatched",
        ("/api/knowledge/push", "post", "200"): "PushOut",
        ("/api/incidents/{incident_id}/assign", "post", "200"): "Assigned",
        ("/api/inbox", "get", "200"): "InboxList",
        ("/api/inbox/{feedback_id}", "get", "200"): "InboxItem",
        ("/api/inbox/{feedback_id}/answer", "post", "200"): "InboxItem",
        ("/api/inbox/{feedback_id}/close", "post", "200"): "InboxItem",
        ("/api/inbox/{feedback_id}/promote", "post", "200"): "InboxItem",
    }
    for (path, method, status), model in expected.items():
        schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, f"{method.upper()} {path}"
    json_routes = {(path, method) for path, method, op in operations(spec) if path not in DOCUMENTS + CHARTS}
    assert json_routes == {(p, m) for p, m, _ in expected}  # a new JSON route needs a model too
    assert spec["components"]["schemas"]["SurveyOut"]["additionalProperties"] is True  # nothing dropped


def test_documents_and_charts_declare_their_media_types(spec: dict[str, Any]) -> None:
    for path in DOCUMENTS:
        media = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert {"text/markdown", "text/html", "application/pdf"} <= set(media), path
        assert media["application/pdf"]["schema"]["format"] == "binary"
    chart = spec["paths"]["/api/metrics/chart.png"]["get"]["responses"]["200"]["content"]
    assert set(chart) >= {"image/png"}


def test_idempotency_header_still_documented(spec: dict[str, Any]) -> None:
    params = spec["paths"]["/api/incidents/{incident_id}/contact"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in params)
    assert not any(p["name"].lower() == "authorization" for p in params)  # it is the security scheme


def test_live_bodies_fit_the_declared_models(service: Service) -> None:
    live = service.api("GET", "/openapi.json").json()
    validate(live)
    report = service.api(
        "POST",
        "/api/feedback",
        json={"category": "service_failure", "summary": "the technician never came", "customer": "OpenAPI"},
    )
    assert report.status_code == 202, report.text
    accepted = schemas.FeedbackAccepted.model_validate(report.json())
    assert accepted.incident_id
    shown = schemas.IncidentDetail.model_validate(service.show(accepted.incident_id))
    assert shown.incident_id == accepted.incident_id and shown.timeline
    assert shown.contact_progress == schemas.ContactProgress(contacted=0, customers=1, overdue=0)
    contact = service.api("POST", f"/api/incidents/{accepted.incident_id}/contact", json={"by": "王芳"})
    assert contact.status_code == 200, contact.text
    body = contact.json()
    declared = {"incident_id", "contacted_at", "on_time", "first", "delivery", "progress_update", "customers"}
    assert set(body) == declared | {"contact_progress"}  # nothing undeclared (messages: with an update)
    typed = schemas.ContactOut.model_validate(body)
    assert typed.contact_progress == schemas.ContactProgress(contacted=1, customers=1, overdue=0)
    assert typed.customers == [accepted.feedback_id]
    missing = service.api("GET", "/api/incidents/INC19990101999")
    assert missing.status_code == 404
    schemas.ErrorOut.model_validate(missing.json())
    listed = schemas.IncidentList.model_validate(service.api("GET", "/api/incidents").json())
    assert any(i.incident_id == accepted.incident_id for i in listed.incidents)


# The generator's own configuration (its README, "Configuration"): it knows only JSON, text and
# application/octet-stream bodies; the chart's PNG and the export's zip are binary like the latter.
GENERATOR_CONFIG = """\
content_type_overrides:
  image/png: application/octet-stream
  application/zip: application/octet-stream
"""


def test_a_generated_client_walks_an_incident(service: Service, tmp_path: Path) -> None:
    """openapi-python-client's client, generated from the live schema without a warning (a warning means
    an operation or a response left out of the client): report → show → contact, a 404 as the typed
    error, the chart as bytes, an inbox item closed."""
    tool = shutil.which("openapi-python-client") or str(
        Path(sys.executable).with_name("openapi-python-client")
    )
    if not Path(tool).exists():
        pytest.skip("openapi-python-client is not installed")
    (tmp_path / "openapi.json").write_text(service.api("GET", "/openapi.json").text)
    (tmp_path / "generator.yaml").write_text(GENERATOR_CONFIG)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    made = subprocess.run(
        [tool, "generate", "--path", "openapi.json", "--config", "generator.yaml", "--overwrite"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "warning" not in (made.stdout + made.stderr).lower(), made.stdout + made.stderr
    sys.path.insert(0, str(tmp_path / "incident-client"))
    try:
        from incident_client import AuthenticatedClient  # type: ignore[import-not-found]
        from incident_client.api.default import (  # type: ignore[import-not-found]
            chart,
            close,
            contact_incident,
            post_feedback,
            show,
        )
        from incident_client.models import (  # type: ignore[import-not-found]
            ContactIn,
            ContactOut,
            ErrorOut,
            FeedbackAccepted,
            FeedbackIn,
            InboxCloseIn,
            InboxItem,
            IncidentDetail,
        )
        from incident_client.types import File  # type: ignore[import-not-found]

        client = AuthenticatedClient(base_url=service.url, token=service.token, timeout=httpx.Timeout(30))
        body = FeedbackIn.from_dict(
            {"category": "product_quality", "summary": "generated client", "customer": "SDK"}
        )
        accepted = post_feedback.sync(client=client, body=body)
        assert isinstance(accepted, FeedbackAccepted), accepted
        shown = show.sync(incident_id=accepted.incident_id, client=client)
        assert isinstance(shown, IncidentDetail) and shown.incident_id == accepted.incident_id
        contacted = contact_incident.sync(
            incident_id=accepted.incident_id, client=client, body=ContactIn.from_dict({"by": "王芳"})
        )
        assert isinstance(contacted, ContactOut), contacted
        assert contacted.delivery.value in ("delivered", "stored", "pending")
        assert contacted.first is True
        missing = show.sync(incident_id="INC19990101999", client=client)
        assert isinstance(missing, ErrorOut) and "INC19990101999" in missing.error, missing
        png = chart.sync(client=client, months=2)
        assert isinstance(png, File) and png.payload.read().startswith(b"\x89PNG"), png
        idea = FeedbackIn.from_dict({"kind": "suggestion", "channel": "app", "summary": "dark mode, please"})
        suggested = post_feedback.sync(client=client, body=idea)
        assert isinstance(suggested, FeedbackAccepted) and suggested.incident_id is None, suggested
        closed = close.sync(feedback_id=suggested.feedback_id, client=client, body=InboxCloseIn.from_dict({}))
        assert isinstance(closed, InboxItem) and closed.status.value == "closed", closed
    finally:
        sys.path.remove(str(tmp_path / "incident-client"))
        for name in [m for m in sys.modules if m.startswith("incident_client")]:
            del sys.modules[name]


def test_models_return_bodies_unchanged() -> None:
    """What a route returns goes out as it was: no key added as null, none dropped, no int made float."""
    body = {
        "incident_id": "INC1",
        "level": 1,
        "category": "product_quality",
        "status": "handling",
        "customers": 120,
        "next_deadline": None,
        "timeline": [{"at": "2026-12-01T00:00:00+00:00", "event": "opened", "by": None, "new": 1}],
        "deadlines": [{"kind": "contact", "due_at": None, "state": "met", "escalated_to": None}],
        "waiting_for": None,
        "contact_progress": {"contacted": 1, "customers": 120},
    }
    dumped = schemas.IncidentDetail.model_validate(body).model_dump(mode="json", exclude_unset=True)
    assert dumped == body
    survey = {"incident_id": "INC1", "delivery": "stored", "score": 5, "target_met": True, "target": 4}
    out = schemas.SurveyOut.model_validate(survey).model_dump(mode="json", exclude_unset=True)
    assert out == survey and isinstance(out["score"], int)
