"""A delivery whose request went out but whose outcome the database refused for a moment (a full
disk, a lock, a restart) is recorded once the database is back, never sent twice.

What must survive: the receiver sees the delivery exactly once; the delivery ends succeeded with
one attempt in its history."""

import sqlite3
import threading

import pytest
from django.db import connection

from apps.integrations import services
from apps.integrations.models import DeliveryAttempt
from apps.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

HOLD_S = 2.5


def hold_write_lock(ready: threading.Event) -> None:
    """Another session takes the lock our writes need and keeps it for HOLD_S seconds."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], timeout=5, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the database's one write lock
    else:
        import psycopg

        other = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            dbname=settings["NAME"],
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
        )
        other.execute(f"LOCK TABLE {DeliveryAttempt._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    ready.set()
    threading.Event().wait(HOLD_S)
    other.execute("COMMIT") if connection.vendor == "sqlite" else other.commit()
    other.close()


@pytest.fixture
def short_lock_wait():
    """This connection waits only briefly for a lock, so the held lock refuses its writes at once;
    the connection's own setting comes back afterwards (later tests share the connection)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            before = cursor.fetchone()[0]
            cursor.execute("PRAGMA busy_timeout = 200")
        else:
            cursor.execute("SET lock_timeout = '200ms'")
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")
        else:
            cursor.execute("RESET lock_timeout")


def test_an_outcome_the_database_refused_for_a_moment_is_written_when_it_is_back_and_nothing_is_sent_twice(
    world, short_lock_wait
):
    locked = threading.Event()

    def lock_on_arrival(_request):
        threading.Thread(target=hold_write_lock, args=(locked,), daemon=True).start()
        assert locked.wait(5)  # answered only once the lock is held: the outcome's write meets it

    receiver = Receiver(on_receive=lock_on_arrival)
    server = receiver.start()
    try:
        services.connector_create(
            access=world.access(world.owner),
            organization=world.org,
            name="hooks",
            url=receiver.url,
            events=["decision.changed"],
        )
        [delivery] = services.emit("decision.changed", project=world.project)
        services.attempt(delivery.pk)
    finally:
        server.shutdown()
    delivery.refresh_from_db()
    assert len(receiver.received) == 1
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert list(delivery.history.values_list("response_code", flat=True)) == [200]
