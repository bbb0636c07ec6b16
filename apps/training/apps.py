from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training and fine-tuning runs: how they scale and what they cost. So far its analysis
    (`analysis/`, plain Python) and `manage.py trainplan`; no models yet."""

    name = "apps.training"
    label = "training"
