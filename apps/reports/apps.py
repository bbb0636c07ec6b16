from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self):
        from apps.core.readiness import changed
        from apps.probes.signals import run_finished
        from apps.reports.refresh import request_refresh, request_scheduled_report

        # Every change that can move a decision queues one re-evaluation after its commit
        # (apps/reports/refresh.py); pages read the stored decision and its age.
        changed.connect(request_refresh, dispatch_uid="reports.request_refresh")
        # A scheduled probe run that succeeded publishes a report, as its own task.
        run_finished.connect(request_scheduled_report, dispatch_uid="reports.scheduled_report")
