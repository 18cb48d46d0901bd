"""The core's tables as SQLAlchemy 2 typed declarative models, and the shared ``MetaData``.

The schema itself is created by the Alembic migrations in ``migrations/versions``; these
models are the reference the migrations are checked against (``tests/unit/test_store_schema``)
and the column objects the repositories build their Core statements from.

An integration defines its own tables on the same ``Base`` in its own module, named by
``Integration.tables`` (``integrations/sf2250/tables.py``, ...), and creates them with its
own migrations (``Integration.migrations``); :func:`serviceplatform.registry.import_tables`
imports them before the schema is migrated or compared.

Conventions that keep the schema identical on SQLite and PostgreSQL:

- UUIDs are stored as their canonical 36-character lowercase text, not a native UUID type.
- Timestamps go through :class:`UtcDateTime`: tz-aware UTC in Python, ``TIMESTAMP WITH TIME
  ZONE`` on PostgreSQL, naive-UTC text on SQLite (which has no time zones).
- A route limited to no subject stores ``''`` rather than NULL, because NULLs never collide in
  a unique constraint and the authority-wide row must be unique too.
- Constraint and index names come from one naming convention, so a later migration can name
  them on both databases. The CHECK pattern puts its prefix before the name it is given, so a
  migration names a CHECK by its short name (``name="state"``) or wraps the full one in
  ``op.f``. The first migrations did neither: on SQLite their CHECKs are still called
  ``ck_<table>_ck_<table>_<name>`` (migration 0015 renamed them on PostgreSQL only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Column sizes shared with the migrations and the writers that truncate to them.
UUID_LEN = 36
CVR_LEN = 8
SUBJECT_LEN = 10
SERVICE_LEN = 64
ROLE_LEN = 32
SYSID_LEN = 64
MESSAGE_ID_LEN = 255
NAME_LEN = 255
CERT_SUBJECT_LEN = 1024
STATUS_LEN = 16
ERROR_CODE_LEN = 16
OPERATION_LEN = 128
HASH_LEN = 64
KIND_LEN = 3
JOB_NAME_LEN = 128
HOLDER_LEN = 255
TOPIC_LEN = 64


_BindProcessor = Callable[[Any], Any]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always tz-aware UTC on the Python side."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock fields only; UTC everywhere keeps them comparable.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> _BindProcessor | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # On SQLite the generic path is process_bind_param, then SQLite's DATETIME formatting
        # through a %-format of seven fields: 2.4 us per value, and every SOAP call binds three
        # (replay entry, audit record). isoformat writes the same text in half the time;
        # tests/unit/test_store_models_utc.py holds it to SQLAlchemy's own result.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given for a UTC timestamp column")
            # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset.
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]

        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConsumerSystemRecord(Base):
    """A case system (anvendersystem) that calls the platform; known by its certificates."""

    __tablename__ = "consumer_systems"

    uuid: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    supplier_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ConsumerSystemCertificateRecord(Base):
    """A certificate a consumer system calls with, matched by its SHA-256 fingerprint.

    ``accepted_from``/``accepted_until`` bound when calls with it are accepted: a rotation
    adds the new certificate and ends the old one's window after an overlap.
    """

    __tablename__ = "system_certificates"

    fingerprint: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    consumer_system: Mapped[str] = mapped_column(
        String(UUID_LEN), ForeignKey("consumer_systems.uuid"), index=True
    )
    subject: Mapped[str] = mapped_column(String(CERT_SUBJECT_LEN))
    issuer: Mapped[str] = mapped_column(String(CERT_SUBJECT_LEN))
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_from: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The certificate itself, so an operator can always see what was registered.
    pem: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsumerSystemEventRecord(Base):
    """One change of a consumer system: who did what, when and why (its history)."""

    __tablename__ = "system_events"
    __table_args__ = (Index(None, "consumer_system", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer_system: Mapped[str] = mapped_column(String(UUID_LEN))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(OPERATION_LEN))
    reason: Mapped[str | None] = mapped_column(Text)
    #: JSON of what changed (names, fingerprints, windows).
    details: Mapped[str | None] = mapped_column(Text)


class AgreementRecord(Base):
    __tablename__ = "agreements"
    __table_args__ = (
        Index(None, "authority_cvr", "service", "consumer_system"),
        CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'suspended', 'revoked')",
            name="status",
        ),
    )

    uuid: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    service: Mapped[str] = mapped_column(String(SERVICE_LEN))
    consumer_system: Mapped[str] = mapped_column(
        String(UUID_LEN), ForeignKey("consumer_systems.uuid")
    )
    supplier: Mapped[str] = mapped_column(String(NAME_LEN))
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    register_cert_alias: Mapped[str | None] = mapped_column(String(NAME_LEN))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RouteRecord(Base):
    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("authority_cvr", "service", "role", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    service: Mapped[str] = mapped_column(String(SERVICE_LEN))
    role: Mapped[str] = mapped_column(String(ROLE_LEN))
    sysid: Mapped[str] = mapped_column(String(SYSID_LEN))
    subject: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    source: Mapped[str] = mapped_column(Text)


class AuditRecord(Base):
    __tablename__ = "audit_records"
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'fault')", name="outcome"),
        # The message log's filters (migration 0009); time and outcome go by ``at``.
        Index(None, "authority_cvr", "at"),
        Index(None, "service", "at"),
        Index(None, "message_id"),
        Index(None, "subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_LEN))
    authority_cvr: Mapped[str | None] = mapped_column(String(CVR_LEN))
    consumer_system: Mapped[str | None] = mapped_column(String(UUID_LEN))
    service: Mapped[str] = mapped_column(String(SERVICE_LEN))
    operation: Mapped[str | None] = mapped_column(String(OPERATION_LEN))
    subject: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    sysid: Mapped[str | None] = mapped_column(String(SYSID_LEN))
    upstream_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(ERROR_CODE_LEN))
    latency_ms: Mapped[float] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text)


class ReplayRecord(Base):
    __tablename__ = "replay_cache"

    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class OutboxRecord(Base):
    """A message that must leave the platform: written in the transaction that decided it.

    Written once and never updated: its delivery state is a narrow row of its own
    (:class:`OutboxStateRecord`), so marking a message delivered does not rewrite its body.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "created_at"),
        # Covers the joins from ``outbox_state`` that need only the topic or the authority
        # (``Outbox.counts``, the metrics): on SQLite they would read each row's page, body
        # and all, otherwise (migration 0014).
        Index(None, "id", "topic", "authority_cvr"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(UUID_LEN), unique=True)
    topic: Mapped[str] = mapped_column(String(TOPIC_LEN))
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxStateRecord(Base):
    """The delivery state of one outbox row (same ``id``).

    A trigger (migration 0012) writes it ``pending`` with every outbox row, whoever inserts
    the row; the relay updates only this narrow row. The partial index holds the pending
    rows alone, so a claim never passes over the delivered ones of earlier nights; another
    holds the delivered ones by ``delivered_at``, for the purge after the retention.
    """

    __tablename__ = "outbox_state"
    __table_args__ = (
        Index(
            "ix_outbox_state_pending",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # The purge's delivered rows by age (migration 0014); pending rows are not in it.
        Index(
            "ix_outbox_state_delivered_at",
            "delivered_at",
            postgresql_where=text("state = 'delivered'"),
            sqlite_where=text("state = 'delivered'"),
        ),
        CheckConstraint("state IN ('pending', 'delivered')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(STATUS_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class JobLeaseRecord(Base):
    """Who runs a named job (one night's run) until when; shared by every process."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(JOB_NAME_LEN), primary_key=True)
    holder: Mapped[str] = mapped_column(String(HOLDER_LEN))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AgreementEventRecord(Base):
    """One change of an agreement: who did what, when and why (the agreement's history)."""

    __tablename__ = "agreement_events"
    __table_args__ = (Index(None, "agreement_uuid", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(OPERATION_LEN))
    from_status: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    to_status: Mapped[str] = mapped_column(String(STATUS_LEN))
    reason: Mapped[str | None] = mapped_column(Text)
    #: JSON of what else changed (the post-configuration).
    details: Mapped[str | None] = mapped_column(Text)


class RoutingVersionRecord(Base):
    """One row: a number that changes with every committed change of the routing data.

    Triggers (migrations 0006 and 0008) bump it on every write to ``consumer_systems``,
    ``system_certificates``, ``agreements`` and ``routes``; processes compare it per
    call with the version of their in-memory copy.
    """

    __tablename__ = "routing_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


# The Core tables, for the statements on the hot path (no ORM unit of work there).
consumer_systems = cast(Table, ConsumerSystemRecord.__table__)
system_certificates = cast(Table, ConsumerSystemCertificateRecord.__table__)
system_events = cast(Table, ConsumerSystemEventRecord.__table__)
agreements = cast(Table, AgreementRecord.__table__)
routes = cast(Table, RouteRecord.__table__)
audit_records = cast(Table, AuditRecord.__table__)
replay_cache = cast(Table, ReplayRecord.__table__)
outbox = cast(Table, OutboxRecord.__table__)
outbox_state = cast(Table, OutboxStateRecord.__table__)
job_leases = cast(Table, JobLeaseRecord.__table__)
agreement_events = cast(Table, AgreementEventRecord.__table__)
routing_version = cast(Table, RoutingVersionRecord.__table__)
