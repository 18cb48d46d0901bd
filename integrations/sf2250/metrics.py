"""SF2250's gauges on ``/metrics``: the last nightly subscription-list run per authority.

Declared as ``INTEGRATION.metrics``; the core's collector calls :func:`nightly` at every
scrape and counts a failure as source ``nightly``.
"""

from __future__ import annotations

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import and_, func, select

from integrations.sf2250.tables import subscription_snapshots
from serviceplatform.store.db import Database


def nightly(db: Database) -> list[Metric]:
    """The newest complete run of each authority: when it completed and what it found."""
    snapshots = subscription_snapshots
    newest = (
        select(
            snapshots.c.authority_cvr,
            func.max(snapshots.c.list_date).label("list_date"),
        )
        .where(snapshots.c.state == "complete")
        .group_by(snapshots.c.authority_cvr)
        .subquery()
    )
    query = (
        select(
            snapshots.c.authority_cvr,
            snapshots.c.completed_at,
            snapshots.c.subscribed_count,
            snapshots.c.unsubscribed_count,
        )
        .join(
            newest,
            and_(
                newest.c.authority_cvr == snapshots.c.authority_cvr,
                newest.c.list_date == snapshots.c.list_date,
            ),
        )
        .order_by(snapshots.c.authority_cvr)
    )
    with db.transaction() as connection:
        rows = connection.execute(query).all()
    last_run = GaugeMetricFamily(
        "serviceplatform_nightly_last_run_timestamp_seconds",
        "When the newest complete nightly subscription list of an authority was completed.",
        labels=["authority"],
    )
    changes = GaugeMetricFamily(
        "serviceplatform_nightly_last_run_changes",
        "Subscriptions and unsubscriptions found by that run (0 for a first list).",
        labels=["authority"],
    )
    for authority, completed_at, subscribed, unsubscribed in rows:
        if completed_at is not None:
            last_run.add_metric([authority], completed_at.timestamp())
        changes.add_metric([authority], float(subscribed + unsubscribed))
    return [last_run, changes]
