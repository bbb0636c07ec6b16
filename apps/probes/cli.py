"""`manage.py probe URL [options]`: argument parsing and the run, separate from Django's command."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from apps.core.guarded_http import GuardPolicy, guarded_request
from apps.net.netguard import OutboundRefused
from apps.probes.engine import compat, openai
from apps.probes.engine.profiles import CONCURRENT, CONSTANT, POISSON, SYNCHRONOUS, Stage
from apps.probes.engine.prompts import PromptSet
from apps.probes.engine.report import format_diagnosis, format_summary, progress_line, write_csv, write_json
from apps.probes.engine.runner import PreflightFailed, ProbeConfig, ProbeRun, api_base, new_event_loop
from apps.probes.engine.stats import SLO, format_error_details
from apps.probes.engine.sweep import SweepSpec, sweep_driver
from apps.probes.engine.tenants import ISOLATED, LEAKY, TenantPlan, format_analysis, run_tenants
from apps.probes.engine.tenants import analyse as analyse_tenants

PROFILES = (SYNCHRONOUS, CONCURRENT, CONSTANT, POISSON, "sweep")


class UsageError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="base URL of the OpenAI-compatible API, with or without /v1")
    parser.add_argument("--model", help="model name (default: the first of /v1/models)")
    parser.add_argument("--api", choices=(openai.CHAT, openai.COMPLETIONS), default=openai.CHAT)
    parser.add_argument("--api-key", help="bearer token for the endpoint")
    parser.add_argument("--profile", choices=PROFILES, default=CONCURRENT)
    parser.add_argument("--concurrency", type=int, default=8, help="for concurrent (default 8)")
    parser.add_argument("--rate", type=float, help="requests/s for constant and poisson; the sweep's start rate")
    parser.add_argument(
        "--stages", type=Path, help='JSON list of stages, e.g. [{"kind": "poisson", "rate": 5, "duration": 30}]'
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30); per step for a sweep")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds excluded from the figures at the start")
    parser.add_argument("--cooldown", type=float, default=0.0, help="seconds excluded at the end")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--prompts", type=Path, help="JSONL of prompts (instead of synthetic ones)")
    parser.add_argument("--extra-body", help="JSON merged into every request, e.g. '{\"ignore_eos\": true}'")
    parser.add_argument("--metrics-url", help="Prometheus /metrics URL to scrape during the run")
    parser.add_argument("--scrape-interval", type=float, default=2.0)
    parser.add_argument("--slo", default="", help="e.g. ttft_p95=500ms,tpot_p95=50ms,error_rate=1%%")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    parser.add_argument("--max-requests", type=int)
    parser.add_argument("--saturation-threshold-ms", type=float, default=5.0)
    parser.add_argument(
        "--allow-private",
        action="store_true",
        default=None,
        help="allow private/loopback targets (default: READINESS_ALLOW_PRIVATE_ENDPOINTS)",
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="write summary + stages + requests as JSON")
    parser.add_argument("--csv", dest="csv_out", type=Path, help="write per-request records as CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--request-id-header",
        default=openai.DEFAULT_REQUEST_ID_HEADER,
        metavar="NAME|none",
        help="header carrying each request's UUID (default X-Request-Id; none: no id)",
    )
    parser.add_argument(
        "--check", action="store_true", help="no load: a handful of requests, then a table of what the server supports"
    )
    parser.add_argument(
        "--tenants",
        type=Path,
        help="JSON noisy-neighbour plan: tenants with their own keys or header values, traffic and one "
        "burst (docs/probes.md); the verdict is isolated (exit 0), leaky (1) or inconclusive (2)",
    )
    parser.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the one request sent before the load to check that the server answers",
    )


def stages_from(options: dict) -> tuple[list[Stage], object]:
    profile, duration = options["profile"], options["duration"]
    if options.get("stages"):
        try:
            raw = json.loads(Path(options["stages"]).read_text())
            if not isinstance(raw, list) or not raw:
                raise UsageError("--stages: expected a non-empty JSON list of stages")
            return [Stage.from_dict(s) for s in raw], None
        except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise UsageError(f"--stages: {exc}") from None
    if profile == "sweep":
        return [], sweep_driver(
            SweepSpec(
                start_rate=options.get("rate"),
                step_duration=duration,
                step_warmup=min(options["warmup"] or 3.0, duration / 2),
            )
        )
    try:
        if profile == SYNCHRONOUS:
            return [Stage(SYNCHRONOUS, duration)], None
        if profile == CONCURRENT:
            return [Stage(CONCURRENT, duration, concurrency=options["concurrency"])], None
        return [Stage(profile, duration, rate=options.get("rate"))], None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def first_model(url: str, api_key: str | None, policy: GuardPolicy) -> str:
    origin, base = api_base(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = guarded_request("GET", origin + base + "/models", policy=policy, headers=headers)
    except OutboundRefused as exc:
        raise UsageError(f"refused: {exc}") from None
    except Exception as exc:
        raise UsageError(f"could not read {base}/models to pick a model ({exc}); pass --model") from None
    if response.status_code != 200:
        raise UsageError(
            f"could not read {base}/models to pick a model (HTTP {response.status_code}: is this the base URL "
            "of an OpenAI-compatible API?); pass --model"
        )
    try:
        return response.json()["data"][0]["id"]
    except Exception:
        raise UsageError(f"could not read {base}/models to pick a model (not a model list); pass --model") from None


def config_from(options: dict, *, allow_private_default: bool) -> tuple[ProbeConfig, object]:
    allow_private = allow_private_default if options.get("allow_private") is None else options["allow_private"]
    try:
        slo = SLO.parse(options.get("slo") or "")
        extra = json.loads(options["extra_body"]) if options.get("extra_body") else None
        if extra is not None and not isinstance(extra, dict):
            raise ValueError("--extra-body must be a JSON object")
        prompts = (
            PromptSet.from_jsonl(options["prompts"])
            if options.get("prompts")
            else PromptSet.synthetic(prompt_tokens=options["prompt_tokens"], seed=options["seed"])
        )
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if options["max_tokens"] < 1:
        raise UsageError("--max-tokens must be at least 1")
    stages, driver = stages_from(options)
    policy = GuardPolicy(allow_private=allow_private, timeout_seconds=min(options["timeout"], 30))
    model = options.get("model") or first_model(options["url"], options.get("api_key"), policy)
    try:
        config = ProbeConfig(
            base_url=options["url"],
            model=model,
            stages=stages,
            api=options["api"],
            api_key=options.get("api_key"),
            prompts=prompts,
            max_tokens=options["max_tokens"],
            extra_body=extra,
            request_timeout=options["timeout"],
            warmup=options["warmup"],
            cooldown=options["cooldown"],
            seed=options["seed"],
            slo=slo,
            metrics_url=options.get("metrics_url"),
            scrape_interval=options["scrape_interval"],
            allow_private=allow_private,
            max_requests=options.get("max_requests"),
            saturation_threshold_ms=options["saturation_threshold_ms"],
            request_id_header=options.get("request_id_header", openai.DEFAULT_REQUEST_ID_HEADER),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return config, driver


def run(options: dict, *, allow_private_default: bool, out=sys.stdout, err=sys.stderr) -> int:
    """Run the probe; returns the exit code: 0 ok, 1 an SLO missed, 2 bad usage, unreachable or nothing succeeded."""
    try:
        config, driver = config_from(options, allow_private_default=allow_private_default)
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if options.get("check"):
        return run_check(config, options, out=out, err=err)
    if options.get("tenants"):
        return run_tenants_plan(config, options, out=out, err=err)
    total = sum(s.duration for s in config.stages) or None
    tty = err.isatty()

    def show(p):
        if not options.get("quiet"):
            err.write(("\r" if tty else "") + progress_line(p, total) + ("" if tty else "\n"))
            err.flush()

    async def main():
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, cancel.set)  # Ctrl-C: stop sending, keep results
        try:
            probe = ProbeRun(config, cancel=cancel, on_progress=show)
        except OutboundRefused as exc:
            raise UsageError(f"refused: {exc}") from None
        if options.get("preflight", True):
            checked = await probe.preflight()
            for dropped in checked["dropped"]:
                err.write(f"note: the server refuses {dropped['part']} ({dropped['why']}): sent without it\n")
        return await probe.execute(driver)

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(main())
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except PreflightFailed as exc:
        err.write(format_diagnosis(exc.diagnosis) + "\n")
        return 2
    if tty and not options.get("quiet"):
        err.write("\n")
    out.write(format_summary(result) + "\n")
    if options.get("json_out"):
        with open(options["json_out"], "w") as fh:
            write_json(result, fh)
    if options.get("csv_out"):
        with open(options["csv_out"], "w", newline="") as fh:
            write_csv(result.records, fh)
    overall = result.summary["overall"]
    if overall["requests"] == 0:
        err.write("error: no request was measured\n")
        return 2
    errors = overall["errors"]
    if errors.get("connect", 0) == overall["requests"]:
        err.write(f"error: the endpoint is unreachable (every request failed to connect to {config.base_url})\n")
        return 2
    if sum(errors.values()) == overall["requests"]:
        # Without an SLO this would exit 0: a CI gate must not pass a run in which nothing worked.
        details = format_error_details(result.summary["error_details"])
        err.write("error: no request succeeded:\n" + "".join(f"  {line}\n" for line in details))
        return 2
    return 1 if result.summary["slo_met"] is False else 0


def run_check(config: ProbeConfig, options: dict, *, out, err) -> int:
    """`--check`: the compatibility table; exit 0 when streaming works, 2 when it does not."""
    try:
        report = compat.run_check(config)
    except OutboundRefused as exc:
        err.write(f"error: refused: {exc}\n")
        return 2
    out.write(f"compatibility of {config.base_url} (model {config.model})\n{compat.format_table(report)}\n")
    if options.get("json_out"):
        with open(options["json_out"], "w") as fh:
            json.dump(report, fh)
    return 0 if report["streaming"] else 2


def run_tenants_plan(config: ProbeConfig, options: dict, *, out, err) -> int:
    """`--tenants`: every tenant's figures, the quiet tenants around the burst, and the verdict."""
    try:
        plan = TenantPlan.from_dict(json.loads(Path(options["tenants"]).read_text()))
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
        err.write(f"error: --tenants: {exc}\n")
        return 2

    async def main():
        cancel = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, cancel.set)
        return await run_tenants(config, plan, cancel=cancel)

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runs = runner.run(main())
    except OutboundRefused as exc:
        err.write(f"error: refused: {exc}\n")
        return 2
    report = analyse_tenants(runs, plan, config.slo)
    out.write(format_analysis(report) + "\n")
    if options.get("json_out"):
        with open(options["json_out"], "w") as fh:
            json.dump(report, fh, indent=1)
    return {ISOLATED: 0, LEAKY: 1}.get(report["verdict"], 2)
