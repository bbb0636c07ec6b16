"""`manage.py trainplan` on logs written by the test from a known model: a step takes
a/N + b seconds with a fixed global batch, so the efficiency, the fit's prediction and the plan's
cost are known in advance; bad lines are reported by number, and bad arguments get clear errors."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.training.analysis import logs, report

COMPUTE_S, OVERHEAD_S, BATCH = 8.0, 0.5, 1_000_000  # tokens per step, the same at every count


def step_time(gpus: int) -> float:
    return COMPUTE_S / gpus + OVERHEAD_S


def write_log(tmp_path, gpus: int, *, steps: int = 20, bad: bool = False):
    lines = ["step,time,tokens,gpus"]
    for step in range(1, steps + 1):
        lines.append(f"{step},{step * step_time(gpus):.4f},{step * BATCH},{gpus}")
    if bad:
        lines.insert(5, "7,not-a-number,7000000,8")
    path = tmp_path / f"run-{gpus}.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("trainplan", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_log_is_one_measurement_of_its_mean_step_time_and_tokens_per_step(tmp_path):
    with open(write_log(tmp_path, 4)) as fh:
        m = report.measurement(logs.parse(fh))
    assert m.gpus == 4 and m.step_time_s == pytest.approx(step_time(4)) and m.tokens_per_step == BATCH


def test_the_plan_from_four_logs_matches_the_model_that_wrote_them(tmp_path):
    paths = [write_log(tmp_path, n, bad=n == 8) for n in (1, 2, 4, 8)]
    args = [*paths, "--tokens", "1e10", "--usd-per-gpu-hour", "2", "--deadline-h", "4", "--json"]
    out, err = run(*args, "--spot-usd-per-gpu-hour", "0.8", "--checkpoint-s", "60", "--mtbf-h", "8")
    plan = json.loads(out)
    assert "run-8.csv:6:" in err  # the bad line, by its number
    efficiency = {r["gpus"]: r["efficiency"] for r in plan["measured"]}
    assert efficiency[8] == pytest.approx(step_time(1) / step_time(8) / 8)
    # 1e10 tokens is 10,000 steps; within 4 h (14,400 s) a step may take 1.44 s: 8 GPUs (1.5 s) are
    # too slow, 16 (1.0 s) the cheapest that make it, if the fit extrapolates right.
    choice = plan["on_demand"]["choice"]
    assert choice["gpus"] == 16 and choice["wall_s"] == pytest.approx(10_000 * step_time(16), rel=0.02)
    assert choice["cost_usd"] == pytest.approx(choice["wall_s"] / 3600 * 16 * 2, rel=1e-6)
    spot = plan["spot"]
    assert spot["instances"] == 2 and spot["job_mtbf_s"] == 4 * 3600
    assert spot["young_interval_s"] == pytest.approx((2 * 60 * 4 * 3600) ** 0.5)
    assert spot["simulated"]["mean_s"] == pytest.approx(spot["wall_s"], rel=0.05)
    assert spot["cost_usd"] < choice["cost_usd"]
    text, _ = run(*args[:-1])
    assert "cheapest within 4.00 h: 16 GPUs" in text and "(used)" in text


def test_bad_arguments_and_logs_get_clear_errors(tmp_path):
    path = write_log(tmp_path, 2)
    with pytest.raises(CommandError, match="one positive count per log"):
        run(path, "--gpus", "1,2")
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "missing.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CommandError, match="empty"):
        run(str(empty))
    with pytest.raises(CommandError, match="--epochs and --tokens-per-epoch together"):
        run(path, "--epochs", "3")
    out, _ = run(path)
    assert "one GPU count measured" in out
