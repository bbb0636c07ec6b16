import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")

app = Celery("readiness")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The default for every thread, not only the importing one: shared_task proxies resolve
# through the current app, which is thread-local (web threads, test servers, engine threads).
app.set_default()
