"""`python manage.py trainplan LOG [LOG ...]`: how a training job scales across the logged GPU
counts, and what it costs on demand and on spot (docs/training.md)."""

import json

from django.core.management.base import BaseCommand, CommandError

from apps.training.analysis import logs, report
from apps.training.analysis.planner import tokens_for_epochs

MAX_LOGS = 64


class Command(BaseCommand):
    help = (
        "Read training logs (Hugging Face Trainer, Lightning CSV or plain CSV), one per GPU count, and print "
        "the scaling efficiency, fitted step-time models and, given the job's tokens and prices, the "
        "on-demand and spot plan."
    )

    def add_arguments(self, parser):
        parser.add_argument("logs", nargs="+", help="training logs, one run each")
        parser.add_argument("--gpus", help="GPUs of each log, comma-separated (default: the logs' own column)")
        parser.add_argument("--tokens", type=float, help="the job's tokens to train (or --epochs)")
        parser.add_argument("--epochs", type=float, help="epochs, with --tokens-per-epoch")
        parser.add_argument("--tokens-per-epoch", type=float)
        parser.add_argument("--usd-per-gpu-hour", type=float, help="on-demand price")
        parser.add_argument("--deadline-h", type=float, help="finish within this many hours")
        parser.add_argument("--spot-usd-per-gpu-hour", type=float, help="spot price")
        parser.add_argument("--checkpoint-s", type=float, help="seconds to write a checkpoint")
        parser.add_argument("--restart-s", type=float, default=300.0, help="seconds to restart after a preemption")
        parser.add_argument("--mtbf-h", type=float, help="mean hours between preemptions of one spot instance")
        parser.add_argument("--gpus-per-instance", type=int, default=8)
        parser.add_argument("--json", action="store_true", help="print the plan as JSON")

    def handle(self, *args, **options):
        paths = options["logs"]
        if len(paths) > MAX_LOGS:
            raise CommandError(f"at most {MAX_LOGS} logs")
        gpus = _gpu_counts(options["gpus"], len(paths))
        try:
            measurements = [self._measure(path, count) for path, count in zip(paths, gpus, strict=True)]
            job = report.JobSpec(
                total_tokens=_job_tokens(options),
                usd_per_gpu_hour=options["usd_per_gpu_hour"],
                deadline_s=options["deadline_h"] * 3600 if options["deadline_h"] else None,
                spot_usd_per_gpu_hour=options["spot_usd_per_gpu_hour"],
                checkpoint_s=options["checkpoint_s"],
                restart_s=options["restart_s"],
                instance_mtbf_s=options["mtbf_h"] * 3600 if options["mtbf_h"] else None,
                gpus_per_instance=options["gpus_per_instance"],
            )
            result = report.plan(measurements, job)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result, indent=1) if options["json"] else report.format_plan(result))

    def _measure(self, path: str, gpus: int | None):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                parsed = logs.parse(fh)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None
        for line, message in parsed.problems:
            self.stderr.write(f"{path}:{line}: {message}")
        if parsed.problems_not_kept:
            self.stderr.write(f"{path}: {parsed.problems_not_kept} more bad lines")
        try:
            return report.measurement(parsed, gpus=gpus)
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None


def _job_tokens(options) -> float | None:
    if options["epochs"] is None and options["tokens_per_epoch"] is None:
        return options["tokens"]
    if options["epochs"] is None or options["tokens_per_epoch"] is None or options["tokens"] is not None:
        raise ValueError("give --tokens, or --epochs and --tokens-per-epoch together")
    return tokens_for_epochs(options["epochs"], options["tokens_per_epoch"])


def _gpu_counts(text: str | None, count: int) -> list[int | None]:
    if not text:
        return [None] * count
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise CommandError("--gpus takes whole numbers, comma-separated") from None
    if len(values) != count or min(values) < 1:
        raise CommandError(f"--gpus needs one positive count per log ({count})")
    return values
