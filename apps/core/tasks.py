from celery import shared_task
from django.core.cache import cache


@shared_task(ignore_result=True)
def ping_task(token: str) -> None:
    """Proves a worker is alive and can reach the cache and database (health, tests)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    cache.set(f"ping:{token}", "pong", timeout=300)
