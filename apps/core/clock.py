"""The database's clock, for heartbeats.

A heartbeat written by a worker on one machine is judged by a reaper on another. Read from one
clock, the database's, a worker whose clock jumps (or a reaper's) neither reaps live work nor
keeps dead work looking alive. One small query per heartbeat is the price.
"""

from datetime import UTC, datetime

from django.db import connection


def db_now() -> datetime:
    """Now, by the database's clock (aware, UTC on SQLite)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
        cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
        return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
