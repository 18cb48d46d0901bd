"""The tables of SF2250 and SF1600 Print, on the core's ``MetaData`` (``INTEGRATION.tables``).

The sending ledger of SF1600 (``sendings``: migration 0002 in ``migrations/``, its
``outward_id`` 0010), each agreement's print route (``print_routes``: 0010), and the
nightly NemSMS subscription lists (``subscription_snapshots``: core migration 0003, written
before the integrations had their own migrations, its SQLite ``AUTOINCREMENT`` 0013;
``subscription_blocks``: 0011, which replaced 0003's ``subscription_entries``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from serviceplatform.store.models import (
    CVR_LEN,
    ERROR_CODE_LEN,
    HASH_LEN,
    MESSAGE_ID_LEN,
    NAME_LEN,
    SERVICE_LEN,
    STATUS_LEN,
    UUID_LEN,
    Base,
    UtcDateTime,
)

#: An ``AfsendelseIdentifikator``'s length in the ledger.
SENDING_KEY_LEN = 64
#: A UUID's text form.
OUTWARD_ID_LEN = 36


class SendingRecord(Base):
    """One sending a caller identified by its own key (SF1600 ``AfsendelseIdentifikator``).

    The row is written before the platform calls out and says whether the sending is in
    flight, done (with the answer given then) or failed, so a repeated call never sends twice.
    """

    __tablename__ = "sendings"
    __table_args__ = (
        UniqueConstraint("service", "authority_cvr", "sending_key"),
        CheckConstraint("state IN ('sending', 'sent', 'failed')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(SERVICE_LEN))
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    sending_key: Mapped[str] = mapped_column(String(SENDING_KEY_LEN))
    request_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    state: Mapped[str] = mapped_column(String(STATUS_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(ERROR_CODE_LEN))
    message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_LEN))
    #: The identifier the sending carries outward, kept across attempts (SF1601: the MeMo
    #: ``messageUUID``, so a retry after a lost answer sends the same message). Migration 0010.
    outward_id: Mapped[str | None] = mapped_column(String(OUTWARD_ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PrintRouteRecord(Base):
    """How an agreement's EP_SP1/EP_SP4 calls go out (migration 0010): the SF1600-era way
    (the NemSMS register, client certificate) or SF1601 (token). No row: ``sf1600``."""

    __tablename__ = "print_routes"
    __table_args__ = (CheckConstraint("route IN ('sf1600', 'sf1601')", name="route"),)

    agreement_uuid: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    route: Mapped[str] = mapped_column(String(STATUS_LEN))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(NAME_LEN))


class SubscriptionSnapshotRecord(Base):
    """One authority's NemSMS subscription list as fetched for one list date.

    ``fetching`` while its parts come in; ``complete`` once the diff against the previous
    complete snapshot and its outbox rows were committed with it.
    """

    __tablename__ = "subscription_snapshots"
    __table_args__ = (
        UniqueConstraint("authority_cvr", "list_date"),
        CheckConstraint("state IN ('fetching', 'complete')", name="state"),
        # SQLite would give a dropped fetch's id (the highest) to the next one, and a
        # straggler holding it would write into that fetch (migration 0013).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN))
    list_date: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(STATUS_LEN))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    entry_count: Mapped[int] = mapped_column(Integer)
    subscribed_count: Mapped[int] = mapped_column(Integer)
    unsubscribed_count: Mapped[int] = mapped_column(Integer)
    #: The complete snapshot this one was compared with; None for a first night.
    previous_id: Mapped[int | None] = mapped_column(Integer)


class SubscriptionBlockRecord(Base):
    """A run of up to ``BLOCK_CODES`` entries of one snapshot, coded and compressed
    (``integrations.sf2250.entry_codes``). Migration 0011 replaced one row per entry."""

    __tablename__ = "subscription_blocks"

    snapshot_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("subscription_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    #: The block's place in its snapshot, from 0, in the order it was stored.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The block's smallest and largest code: whether a snapshot's blocks ascend is read
    #: from these without decoding any block.
    first_code: Mapped[int] = mapped_column(BigInteger)
    last_code: Mapped[int] = mapped_column(BigInteger)
    #: Codes in the block.
    entries: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


sendings = cast(Table, SendingRecord.__table__)
print_routes = cast(Table, PrintRouteRecord.__table__)
subscription_snapshots = cast(Table, SubscriptionSnapshotRecord.__table__)
subscription_blocks = cast(Table, SubscriptionBlockRecord.__table__)
