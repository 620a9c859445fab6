"""Every ``INCIDENT_*`` setting in one typed object, read from the environment when asked.

Why one object: the settings were read in a dozen modules, several at import time, so a test or a
second home in the same process saw stale values and nobody could list them. Why read when asked
(``get()``, cached per environment): tests and the CLI point one process at several homes in turn.
Why pydantic-settings: a wrong value (``INCIDENT_SWEEP_SECONDS=soon``) is one clear error naming the
variable, not a ``ValueError`` deep in a loop. The helpers below derive what needs a default from
another setting (the database beside the home) or makes a directory.

Not here: ``PREFECT_*`` (Prefect's own settings) and ``INCIDENT_PLAYBOOKS``, which the playbooks package
reads itself so that it depends on nothing of ours.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from incident import environ
from incident.errors import SettingsError

__all__ = [
    "Settings", "SettingsError", "db_url", "documents_dir", "get", "home", "local_time", "mapping_shape",
    "run_concurrency", "zone",
]  # fmt: skip


class Settings(BaseSettings):
    """The names are the variables without ``INCIDENT_`` (``sweep_seconds`` is ``INCIDENT_SWEEP_SECONDS``)."""

    model_config = SettingsConfigDict(env_prefix="INCIDENT_", extra="ignore", frozen=True)

    # where the state is
    home: Path = Path(".incident")
    db_url: str | None = None
    notify_config: Path | None = None  # apprise YAML whose tags are role names; None: nobody is told
    notify_retries: int = Field(4, ge=1)  # attempts per channel
    notify_backoff: float = Field(0.2, ge=0)  # seconds before the second attempt, doubling
    notify_timeout: float = Field(10.0, ge=0.5)  # the most one attempt may take
    # progress updates to the customers who consented (incident/response/updates.py): an apprise
    # mailto/mailtos base (the customer's address is added as ``to=``), an apprise SMS or gateway URL
    # (the number replaces ``{to}``, else is added as ``to=``), and the language their copy is in
    customer_mail_url: str | None = None
    customer_sms_url: str | None = None
    customer_lang: Literal["zh", "en"] = "zh"
    # who people are and how they read
    api_token: str | None = None  # the service token; unset: generated once, kept in the home (server.py)
    token: str | None = None  # INCIDENT_TOKEN: the CLI's credential, a person's token (incident/people)
    lang: Literal["zh", "en"] = "zh"  # zh-CN, zh_CN.UTF-8, en-US … are read as zh / en
    tz: str | None = None  # IANA zone for what people read; None: the machine's own zone
    public_url: str | None = None  # the console's address in notices
    log_format: Literal["text", "json"] = "text"
    # Reverse proxies whose X-Forwarded-For names the client (IPs or CIDRs, comma-separated): the login
    # limit and the audit then see the client's address; anyone else's header is ignored. Unset: none.
    trusted_proxies: str | None = None
    # the service
    url: str | None = None  # where the CLI finds the service (else the home's service file)
    start_timeout: float = Field(180.0, gt=0)  # the CLI waits this long for a service it starts
    max_body_bytes: int = Field(256 * 1024, gt=0)
    repeat_window: float = Field(60.0, ge=0)  # an Idempotency-Key's answer is replayed this long
    idempotency_wait: float = Field(60.0, gt=0)  # a repeat waits this long for the first answer
    idempotency_keep_hours: float = Field(24.0, gt=0)  # answers to Idempotency-Keys are kept this long
    intake_run_wait: float = Field(2.0, ge=0)  # a quiet report's 202 waits this long for its run
    intake_batch: int = Field(200, gt=0)  # reports recorded per transaction at most
    background_nice: int = Field(15, ge=0, le=19)  # the worker the service starts, and its runs
    prefect_nice: int = Field(5, ge=0, le=19)  # the Prefect server it starts (the L1 notice goes through it)
    urgent_process: bool = True  # level-1 reports' runs in a process of their own (engine/urgent.py)
    # the systems around the process (incident/integrations, README "Systems")
    zendesk_secret: str | None = None  # the webhook's signing secret; unset: the webhook answers 401
    zendesk_replay_seconds: float = Field(300.0, gt=0)  # a signature timestamp older or newer is stale
    zendesk_url: str | None = None  # https://<subdomain>.zendesk.com: write-back; unset: none
    zendesk_email: str | None = None
    zendesk_token: str | None = None
    zendesk_map: Path | None = None  # YAML: more tags and custom-field values that select a category
    freshdesk_secret: str | None = None  # the automation rule's shared secret header; unset: 401
    freshdesk_url: str | None = None  # https://<domain>.freshdesk.com: write-back; unset: none
    freshdesk_api_key: str | None = None
    freshdesk_map: Path | None = None  # as zendesk_map, for Freshdesk tags and custom fields
    alarm_token: str | None = None  # a bearer token that may POST /api/alarms (and nothing else)
    sf_checkword: str | None = None  # SF Express 校验码 (checkWord): route pushes are verified with it
    sf_promise_hours: float = Field(72.0, gt=0)  # from the first scan; no delivered scan by then: alarm
    jd_url: str = "https://api.jd.com/routerjson"  # JD's JOS gateway (the track query)
    jd_app_key: str | None = None  # unset: registered JD waybills are not polled
    jd_app_secret: str | None = None
    jd_access_token: str | None = None
    jd_customer_code: str | None = None  # 商家编码 (customerCode) the waybills were sent under
    jd_promise_hours: float = Field(72.0, gt=0)  # from registration (shipping); undelivered then: alarm
    jd_poll_seconds: float = Field(900.0, gt=0)  # each registered waybill's track is asked this often
    baidu_url: str = "https://yuqing.bce.baidu.com"  # Baidu AI Cloud 舆情 service
    baidu_ak: str | None = None  # Access Key ID; unset: no public-opinion monitoring
    baidu_sk: str | None = None  # Secret Access Key
    baidu_poll_seconds: float = Field(600.0, gt=0)  # each open incident's task is read this often
    baidu_rate: float = Field(1.0, gt=0)  # requests per second to Baidu, at most
    # the knowledge base (incident/knowledge, README "Knowledge base"): closed incidents and reviews pushed
    confluence_url: str | None = None  # https://<site>.atlassian.net (the /wiki paths are added); unset: none
    confluence_email: str | None = None  # the Atlassian account the pages are written as
    confluence_token: str | None = None  # its API token (basic auth e-mail:token)
    confluence_space_id: str | None = None  # the space's numeric id (REST v2 takes ids, not keys)
    confluence_parent_id: str | None = None  # the page they go under; unset: the space's top level
    notion_token: str | None = None  # an internal integration's secret; unset: no Notion push
    notion_parent_page_id: str | None = None  # the page they go under (shared with the integration)
    notion_url: str = "https://api.notion.com"  # Notion's API (a proxy, or a local one in tests)
    # Prefect's services (late runs, automations, the task-run recorder …) in the Prefect server the
    # service starts itself; off only to measure what they cost (README, Benchmark)
    prefect_services: bool = True
    # the engine (incident/engine)
    # The name under which workers serve ``incident_response``. Two product databases on one Prefect
    # server need two names: a runner executes every run of the deployments it serves.
    deployment: str = "incident-service"
    run_concurrency: int | None = Field(None, gt=0)
    incident_runs: int = Field(8, gt=0)  # processes; a run waiting in its process holds one
    poll_seconds: float = Field(1.0, gt=0)
    queue_poll_seconds: float = Field(0.2, gt=0)
    burst_rate: float = Field(50.0, ge=0)  # reports/s above which routine feedback runs wait; 0: never
    burst_hold_seconds: float = Field(30.0, ge=0)  # they wait this long at most (engine/burst.py)
    sweep_seconds: float = Field(10.0, gt=0)
    watch_seconds: float = Field(5.0, gt=0)
    stale_claim_seconds: float = Field(120.0, gt=0)
    resume_timeout: float = Field(3.0, gt=0)
    hot_wait_seconds: float = Field(60.0, ge=0)  # a run waits in its process this long, then suspends
    zombie_seconds: float = Field(90.0, ge=10)  # a Running run silent this long: Crashed (engine/zombies)
    worker_stop_seconds: float = Field(30.0, gt=0)  # a worker's orderly stop, at most (engine/worker)
    # the worker's own /metrics (incident/metrics/process.py); 0: any free port (logged, in worker.ready)
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(9470, ge=0, le=65535)
    # between our own processes: the worker child learns these from ``incident serve``
    prefect_db: str = "unknown"
    worker_ready_file: Path | None = None

    @field_validator("lang", "customer_lang", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if isinstance(value, str) and value[:2].lower() in ("zh", "en"):
            return value[:2].lower()
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        try:
            environ.named_zone(value)
        except SettingsError:
            raise ValueError("not an IANA time zone such as Asia/Shanghai") from None
        return value or None

    @field_validator("zendesk_map", "freshdesk_map")
    @classmethod
    def _mapping_file(cls, value: Path | None) -> Path | None:
        """A mapping file that is missing or not a mapping would refuse every ticket: refused at start."""
        if value is None:
            return None
        import yaml

        try:
            wrong = mapping_shape(yaml.safe_load(value.read_text()))
        except OSError as exc:
            raise ValueError(f"cannot read it ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"not YAML ({str(exc).splitlines()[0]})") from None
        if wrong:
            raise ValueError(wrong)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            ipaddress.ip_network(item, strict=False)  # ValueError: "… does not appear to be an IPv4 …"
        return ",".join(items)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


def mapping_shape(data: object) -> str | None:
    """Why a ticket mapping file's content is not one (None: it is); also read again at run time."""
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"tags", "fields"}:
        return "a YAML mapping with `tags: {tag: category}` and `fields: {field: {value: category}}` only"
    for key in ("tags", "fields"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"`{key}` must be a mapping"
    return None


@lru_cache(maxsize=16)
def _read(environment: tuple[tuple[str, str], ...]) -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        wrong = "; ".join(
            f"INCIDENT_{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise SettingsError(wrong) from None


def get() -> Settings:
    """The settings as the environment says now (cached while it says the same)."""
    return _read(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("INCIDENT_"))))


def zone() -> tzinfo:
    """Where people read times: INCIDENT_TZ, else the machine's own zone (``environ.machine_zone``)."""
    return environ.named_zone(get().tz)


def local_time(value: datetime | str | None, empty: str = "—") -> str:
    """A time for people: local to ``zone()``, to the minute, its offset shown ("2026-12-06 10:30 +08:00");
    a naive value is UTC (as the database stores times). JSON keeps ISO 8601 with its offset instead."""
    if value is None or value == "":
        return empty
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return environ.stamp(moment, zone())


def home() -> Path:
    """INCIDENT_HOME: database, rendered documents, charts and the service file (made if missing)."""
    path = get().home.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url() -> str:
    """INCIDENT_DB_URL, or a SQLite file in the home."""
    return get().db_url or f"sqlite:///{home() / 'incident.db'}"


def documents_dir() -> Path:
    path = home() / "documents"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_concurrency(prefect_database: str = "unknown") -> int:
    """INCIDENT_RUN_CONCURRENCY: feedback runs at once per worker, else what suits Prefect's database.

    Measured (no-op runs, one server process): PostgreSQL saturates at ~4; on SQLite two writers at
    once already collide ("database is locked" → 503 → the client backs off for seconds).
    """
    configured = get().run_concurrency
    if configured:
        return configured
    return 1 if prefect_database == "sqlite" else 4
