from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The whole product wired together on one machine: `seed_demo` (a demo organization, project
    and endpoint on the simulator) and `runstack` (web, workers, beat and simulator, for `make run`).
    It sits above every other app, so it may import any of them."""

    name = "apps.demo"
    label = "demo"
