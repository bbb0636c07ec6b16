"""Demo data for `make run`: safe to run again (it finds what exists instead of duplicating)."""

import os
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.checklists import services as checklist_services
from apps.checklists.models import ChecklistTemplate, EvidenceKind
from apps.costs import services as cost_services
from apps.costs.models import TrafficProfile
from apps.integrations import services as integration_services
from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.orgs.models import Function, Membership, Organization, Role
from apps.probes import services as probe_services
from apps.projects import services as project_services
from apps.projects.models import PriceModel, Project
from apps.reports.evaluation import refresh_project
from apps.signoffs import services as signoff_services

DEMO_USERS = [
    # username, password, role, functions
    ("alice", "alice-demo-pass", Role.OWNER, [Function.ENGINEERING, Function.PRODUCT]),
    ("bob", "bob-demo-pass", Role.VIEWER, [Function.SECURITY]),
    # The three sign-off gates of the demo org, one person each (the owner may not approve her own project).
    ("sam", "sam-demo-pass", Role.MEMBER, [Function.SECURITY]),
    ("erin", "erin-demo-pass", Role.MEMBER, [Function.ENGINEERING]),
    ("fred", "fred-demo-pass", Role.MEMBER, [Function.FINANCE]),
]
DEMO_CONNECTOR = "demo receiver"
DEMO_AUTOSCALING_ENDPOINT = "simulator (autoscaling)"
DEMO_TENANTS_PLAN = "noisy neighbours"
# Support Copilot's expected production traffic: office hours, three times busier at the peak.
DEMO_TRAFFIC = {
    "requests_per_day": 150_000,
    "input_tokens_per_request": 600,
    "output_tokens_per_request": 64,
    "peak_to_average": 3.0,
    "active_hours_per_day": 14,
    "active_start_hour": 7,
    "active_days_per_month": 22,
}
DEMO_GATES = [{"function": f, "required": 1} for f in ("security", "engineering", "finance")]
# What the demo project has not done yet: the reasons its first decision is NO-GO.
DEMO_OPEN = {
    "sec.sensitive-data": ("fail", "Prompts and completions are logged unredacted in the API gateway (SEC-142)."),
    "sec.prompt-injection": ("pending", ""),  # external: the red-team pipeline reports it over the API
    "mon.tracing": ("pending", ""),
}
ADMIN = ("admin", "admin-demo-pass")
# The checklists the demo project starts with: the org's required ones. "tenancy" (a shared
# deployment) is there to add from the project page, once the noisy-neighbour plan has run.
DEMO_CHECKLISTS = ("security", "monitoring", "cost", "reliability")
# Below this many cores the demo's probes, its two simulators, the web server and the workers all
# share a small machine: the lighter load keeps the probe client well inside what it can time.
SMALL_MACHINE_CPUS = 4


def demo_load(cpus: int | None = None) -> dict:
    """The demo's probe load, sized to the machine.

    Every plan is split over two shards. On a small machine the client streams about half the
    tokens per second, and the autoscaling simulator gets 4 batch slots per replica instead of 8,
    so the lighter step (12 req/s) still needs several replicas: the same story, told with less
    CPU. The durations are the same everywhere (baseline 40 s; autoscaling 20 s + 90 s step + 30 s
    = 2 min 20 s), so the README's timings hold on any machine.
    """
    cpus = cpus or os.cpu_count() or 1
    small = cpus < SMALL_MACHINE_CPUS
    steady, peak = (3, 8) if small else (4, 12)
    return {
        "baseline": {
            "stages": [
                {"kind": "poisson", "rate": steady, "duration": 20, "name": f"steady {steady}/s"},
                {"kind": "poisson", "rate": peak, "duration": 20, "name": f"peak {peak}/s"},
            ]
        },
        "autoscaling": {
            "autoscaling": {
                "base_rate": 2 if small else 3,
                "peak_rate": 12 if small else 30,
                "base_s": 20,
                "hold_s": 90,
                "after_s": 30,
            }
        },
        # Noisy neighbours: the support team keeps asking while a batch script bursts beside it. One
        # shard per tenant: two, as the probe worker has two processes.
        "tenants": {
            "tenants": {
                "header": "X-Tenant",
                "isolation": {"ttft_increase_pct": 200, "error_rate_increase": 0.02},
                "tenants": [
                    {"name": "support-team", "stages": [{"kind": "poisson", "rate": steady, "duration": 60}]},
                    {"name": "batch-script", "burst": {"at": 20, "requests": 10 * peak, "over": 10}},
                ],
            }
        },
        "autoscaling_slots": 4 if small else 8,
        # Two shards, on the probe worker's two processes: each client opens half the connections
        # (the autoscaling step opens a hundred at once) and keeps its timing with a margin.
        "parallelism": 2,
    }


class Command(BaseCommand):
    help = "Create the demo organization, users, project and simulator endpoint (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default="http://127.0.0.1:8900/v1")
        parser.add_argument("--receiver-url", default="http://127.0.0.1:8901/hooks/readiness")
        parser.add_argument("--autoscaling-simulator-url", default="http://127.0.0.1:8902/v1")

    @transaction.atomic
    def handle(self, *args, simulator_url: str, receiver_url: str, autoscaling_simulator_url: str, **options):
        User = get_user_model()
        users = {}
        for username, password, _, _ in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(password)
                user.save()
            users[username] = user
        admin, created = User.objects.get_or_create(
            username=ADMIN[0], defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"}
        )
        if created:
            admin.set_password(ADMIN[1])
            admin.save()

        org = Organization.objects.filter(slug="acme").first()
        if org is None:
            org = org_services.organization_create(name="Acme Corp", slug="acme", owner=users["alice"])
        owner_access = Access.for_user(users["alice"])
        for username, _, role, functions in DEMO_USERS:
            membership = Membership.objects.filter(organization=org, user=users[username]).first()
            if membership is None:
                org_services.membership_add(
                    access=owner_access, org=org, username=username, role=role, functions=functions
                )
            elif membership.functions != sorted(functions):
                org_services.membership_update(
                    access=owner_access, membership=membership, role=membership.role, functions=functions
                )

        project = Project.objects.filter(organization=org, slug="support-copilot").first()
        if project is None:
            project = project_services.project_create(
                access=owner_access,
                organization=org,
                name="Support Copilot",
                slug="support-copilot",
                use_case="Drafts answers to customer support tickets from the knowledge base.",
                stage="pilot",
                risk_tier="high",
                data_classification="confidential",
                monthly_budget_usd=Decimal("4000"),
                expected_peak_rpm=600,
            )
        if not project.endpoints.filter(name="simulator").exists():
            project_services.endpoint_create(
                access=owner_access,
                project=project,
                name="simulator",
                base_url=simulator_url,
                model_name="sim-llama-3-8b",
                metrics_url=simulator_url.removesuffix("/v1") + "/metrics",
                price_model=PriceModel.SELF_HOSTED,
                gpu_type="NVIDIA L4",
                gpus_per_replica=1,
                gpu_hourly_usd=Decimal("0.80"),
                min_replicas=1,
                max_replicas=4,
            )
        endpoint = project.endpoints.get(name="simulator")
        if not endpoint.probe_plans.filter(name="baseline").exists():
            probe_services.probe_plan_create(
                access=owner_access,
                endpoint=endpoint,
                name="baseline",
                profile=demo_load()["baseline"],
                parallelism=demo_load()["parallelism"],
                max_tokens=64,
                prompt_tokens=256,
                slo={"ttft_p95_ms": 500, "tpot_p95_ms": 50, "error_rate": 0.01},
            )
        if not endpoint.probe_plans.filter(name=DEMO_TENANTS_PLAN).exists():
            probe_services.probe_plan_create(
                access=owner_access,
                endpoint=endpoint,
                name=DEMO_TENANTS_PLAN,
                max_tokens=64,
                prompt_tokens=256,
                profile=demo_load()["tenants"],
                slo={"ttft_p95_ms": 500},
            )
        self._autoscaling_demo(project, owner_access, autoscaling_simulator_url)
        self._readiness(org, project, owner_access)
        if not TrafficProfile.objects.filter(project=project).exists():
            cost_services.traffic_save(access=owner_access, project=project, **DEMO_TRAFFIC)
        if not project.usage_logs.exists():
            self._sample_usage_log(project, owner_access)
        if not org.connectors.filter(name=DEMO_CONNECTOR).exists():
            # `make run` starts a receiver on this URL that checks each delivery's signature.
            every_event = integration_services.SUBSCRIBABLE
            integration_services.connector_create(
                access=owner_access, organization=org, name=DEMO_CONNECTOR, url=receiver_url, events=every_event
            )
        # The demo opens decided: the worker that would re-decide after these changes may still be starting.
        refresh_project(project)
        self.stdout.write(
            self.style.SUCCESS("demo data ready: org acme, users " + " / ".join(u[0] for u in DEMO_USERS))
        )

    def _autoscaling_demo(self, project, owner_access, url: str) -> None:
        """A second endpoint on the simulator's autoscaling scenario (1 → 6 replicas, 20 s cold start)
        and an autoscaling plan: a base rate for 20 s, a step up held for 90 s, back down for 30 s
        (rates from `demo_load`)."""
        if not project.endpoints.filter(name=DEMO_AUTOSCALING_ENDPOINT).exists():
            project_services.endpoint_create(
                access=owner_access,
                project=project,
                name=DEMO_AUTOSCALING_ENDPOINT,
                base_url=url,
                model_name="sim-llama-3-8b",
                metrics_url=url.removesuffix("/v1") + "/metrics",
                price_model=PriceModel.SELF_HOSTED,
                gpu_type="NVIDIA L4",
                gpus_per_replica=1,
                gpu_hourly_usd=Decimal("0.80"),
                min_replicas=1,
                max_replicas=6,
            )
        endpoint = project.endpoints.get(name=DEMO_AUTOSCALING_ENDPOINT)
        if not endpoint.probe_plans.filter(name="autoscaling").exists():
            probe_services.probe_plan_create(
                access=owner_access,
                endpoint=endpoint,
                name="autoscaling",
                max_tokens=64,
                prompt_tokens=256,
                profile=demo_load()["autoscaling"],
                slo={"ttft_p95_ms": 500},
                parallelism=demo_load()["parallelism"],
            )

    def _sample_usage_log(self, project, owner_access) -> None:
        """Two office days of a pilot's usage (deterministic): 300 users, one of them a script that
        fires 40 questions in one minute. Analysed here, so the cost page has it at once."""
        import random

        from django.core.files.uploadedfile import SimpleUploadedFile

        rng = random.Random(7)
        lines = ["timestamp,user,tenant,input_tokens,output_tokens"]
        for day in (2, 3):
            for _ in range(4000):
                hour = min(20, max(7, int(rng.gauss(13, 2.5))))
                user = f"user{int(rng.paretovariate(1.2)) % 300:03d}"
                stamp = f"2026-11-{day:02d}T{hour:02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
                lines.append(f"{stamp},{user},team-{int(user[4:]) % 7},{rng.randint(200, 1200)},{rng.randint(20, 64)}")
        lines += [f"2026-11-03T15:42:{s:02d}Z,batch-script,team-0,800,64" for s in range(40)]
        content = ("\n".join(lines) + "\n").encode()
        upload = SimpleUploadedFile("pilot-usage-sample.csv", content)
        log = cost_services.usage_log_upload(access=owner_access, project=project, upload=upload)
        cost_services.usage_log_analyse(log.pk)
        # The same log in the org's import folder, to try "analyse one already stored on the server".
        folder = settings.READINESS_USAGE_LOG_IMPORT_DIR / project.organization.slug / "pilot"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "usage-2026-11.csv").write_bytes(content)

    def _readiness(self, org, project, owner_access) -> None:
        """Sign-off policy and the four checklists, answered except for what keeps the demo NO-GO."""
        signoff_services.policy_update(access=owner_access, org=org, gates=DEMO_GATES)
        checklist_services.ensure_shipped_templates(org)
        templates = ChecklistTemplate.objects.filter(organization=org, shipped=True, category__in=DEMO_CHECKLISTS)
        for template in templates.order_by("key", "-version"):
            if project.checklists.filter(template_key=template.key).exists():
                continue
            checklist = checklist_services.checklist_add(access=owner_access, project=project, template=template)
            for response in checklist_services.current_responses(checklist):
                if response.item.evidence_kind == EvidenceKind.AUTOMATIC:
                    continue  # decided by the demo probe run
                status, note = DEMO_OPEN.get(response.item.key, ("pass", f"Demo evidence: {response.item.guidance}"))
                if status != "pending":
                    checklist_services.response_answer(
                        access=owner_access, response=response, status=status, evidence_text=note
                    )
