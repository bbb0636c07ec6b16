from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"

    def ready(self):
        from apps.core.events import subscribe
        from apps.integrations.services import emit

        # What checklists, probes, sign-offs and the decision announce becomes deliveries here.
        subscribe(emit)
