from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self):
        from apps.core.readiness import subscribe
        from apps.reports.evaluation import refresh_project

        # Every change that can move a decision re-decides at once, in the writer's transaction:
        # the person who answered an item sees the decision their answer made.
        subscribe(refresh_project)
