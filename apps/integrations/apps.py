from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"

    def ready(self):
        from apps.core.events import announced
        from apps.core.panels import project_readiness
        from apps.integrations.panels import readiness_tickets_panel
        from apps.integrations.services import emit

        # What checklists, probes, sign-offs and the decision announce becomes deliveries here.
        def deliver(sender, *, event, project, finding_key, data, **kwargs):
            return emit(event, project=project, finding_key=finding_key, data=data)

        announced.connect(deliver, dispatch_uid="integrations.emit", weak=False)
        # The readiness page lists the tickets that track its findings.
        project_readiness.connect(readiness_tickets_panel, dispatch_uid="integrations.readiness_tickets")
