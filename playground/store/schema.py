"""ORM models for the share store: the latest schema, as code reads and writes it.

The tables are created and changed only by the migrations in
``playground.store.migrations``; a test checks that these models and the
migrated database agree. The ``schema_migrations`` ledger has no model here:
only the migrations read and write it, in plain SQL. Timestamps are UTC-aware
datetimes set in Python and stored as fixed-width ISO text, so they sort as
text and never come back naive.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Dialect, Index, Integer, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime kept as ISO 8601 text in UTC, e.g. ``2026-11-25T18:40:00.123456+00:00``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime; naive times are ambiguous")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class Base(DeclarativeBase):
    pass


class ShareRow(Base):
    """One shared generation. The full record is JSON; a few fields are copied out for queries."""

    __tablename__ = "shares"
    __table_args__ = (Index("ux_shares_generation_id", "generation_id", unique=True),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # secrets.token_urlsafe(16): 128 bits
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # when it was shared
    mode: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text, index=True)
    generation_id: Mapped[str] = mapped_column(Text)  # the Generation.id it came from: one share each (the index)
    delete_token_hash: Mapped[str] = mapped_column(Text)  # sha256 hex; the token itself is never kept
    record_json: Mapped[str] = mapped_column(Text)  # Generation.to_dict(), surrogates replaced
    finish_reason: Mapped[str | None] = mapped_column(Text)  # added by m002, hence nullable
    app_version: Mapped[str | None] = mapped_column(Text)  # added by m002, hence nullable



class GenerationRow(Base):
    """A finished generation, shared or not, kept for the retention period so any replica can find it."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # Generation.id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # when it finished
    mode: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    record_json: Mapped[str] = mapped_column(Text)  # Generation.to_dict(), surrogates replaced


class RateWindowRow(Base):
    """Requests one client made under one limit in one minute (``store/limits.py``)."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(Text, primary_key=True)  # a hash of the limit and the client
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time, a multiple of 60
    hits: Mapped[int] = mapped_column(Integer)
