"""Training log parsers: each format from a file written here, bad lines reported by number."""

import json

import pytest

from apps.training.analysis import logs
from apps.training.analysis.logs import LogFormat, StepPoint


def parse_file(path, format=None):
    with path.open(encoding="utf-8") as lines:  # streamed line by line, as a large log would be
        return logs.parse(lines, format)


def test_trainer_state_json(tmp_path):
    history = [
        {"epoch": 0.1, "learning_rate": 5e-05, "loss": 2.5, "step": 10, "num_input_tokens_seen": 40960},
        {"epoch": 0.1, "eval_loss": 2.4, "eval_runtime": 3.0, "step": 10},  # evaluation: skipped, not a problem
        {"epoch": 0.2, "learning_rate": 4e-05, "loss": float("nan"), "step": 20},
        {"epoch": 0.3, "learning_rate": 3e-05, "loss": 2.1, "step": 30, "num_input_tokens_seen": 122880},
        {"epoch": 0.4, "learning_rate": 2e-05, "loss": 2.0, "step": 25},
        {"epoch": 1.0, "step": 30, "train_runtime": 12.5, "train_samples_per_second": 9.6, "total_flos": 1e15},
    ]
    state = {"best_metric": None, "epoch": 1.0, "global_step": 30, "log_history": history}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2, sort_keys=True))
    text_lines = path.read_text().splitlines()
    entry_lines = [number for number, line in enumerate(text_lines, start=1) if line == "    {"]

    parsed = parse_file(path)

    assert parsed.format is LogFormat.HF_TRAINER_STATE
    assert parsed.points == [
        StepPoint(step=10, tokens=0, loss=2.5),
        StepPoint(step=30, tokens=81920, loss=2.1),
    ]
    assert parsed.problems == [
        (entry_lines[2], "loss is nan"),
        (entry_lines[4], "step 25 does not follow step 30"),
    ]
    assert parsed.runtime_s == 12.5


def test_trainer_state_cut_off_while_written_keeps_the_entries_before_the_cut(tmp_path):
    state = {"log_history": [{"loss": 1.0 / step, "step": step} for step in range(1, 6)]}
    text = json.dumps(state, indent=2)
    path = tmp_path / "trainer_state.json"
    path.write_text(text[: text.index('"step": 4')])

    parsed = parse_file(path)

    assert [point.step for point in parsed.points] == [1, 2, 3]
    assert len(parsed.problems) == 1
    assert parsed.problems[0][1].startswith("log_history stops")


def test_trainer_state_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_TRAINER_STATE_CHARS", 1000)
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": [{"loss": 1.0, "step": s} for s in range(1, 100)]}, indent=2))

    with pytest.raises(ValueError, match="larger than"):
        parse_file(path)


def test_hf_json_lines_in_json_and_as_printed(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(
        "\n".join(
            [
                '{"loss": 2.5, "learning_rate": 5e-05, "epoch": 0.1, "step": 10}',
                "{'loss': 2.4, 'grad_norm': 1.1, 'learning_rate': 4e-05, 'epoch': 0.2, 'step': 20}",
                " 40%|████      | 20/50 [00:10<00:15,  2.00it/s]",
                '{"loss": 2.3, "epoch": 0.3}',
                '{"loss": 2.2, "step": -30}',
                '{"loss": 2.2, "step": 30.5}',
                '{"loss": 2.2, "step": 30',
                '{"eval_loss": 2.3, "step": 30}',
                '{"loss": 2.1, "step": 40}',
            ]
        )
    )

    parsed = parse_file(path)

    assert parsed.format is LogFormat.HF_JSON_LINES
    assert [(p.step, p.loss) for p in parsed.points] == [(10, 2.5), (20, 2.4), (40, 2.1)]
    assert parsed.problems == [
        (3, "not a log record"),
        (4, "no step"),
        (5, "step is negative: -30"),
        (6, "step is not a whole number: 30.5"),
        (7, "not a JSON or Python dict"),
    ]


def test_lightning_metrics_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train_loss_step,train_step_time,val_loss\n"
        "0,49,2.50,0.50,\n"
        "0,99,2.40,0.40,\n"
        "0,99,,,2.45\n"  # validation row at the last training step: skipped, not a problem
        "0,149,2.30,inf,\n"
        "0,149,2.30,abc,\n"
        "1,199,-0.10,0.60,\n"
        "1,249,2.10,0.60\n"
    )

    parsed = parse_file(path)

    assert parsed.format is LogFormat.LIGHTNING_CSV
    # Per-step times: each point adds its step time × the steps since the previous point.
    assert parsed.points == [
        StepPoint(step=49, time_s=0.0, loss=2.5),
        StepPoint(step=99, time_s=50 * 0.4, loss=2.4),
        StepPoint(step=199, time_s=50 * 0.4 + 100 * 0.6, loss=-0.1),  # a negative loss is kept
    ]
    assert parsed.problems == [
        (5, "train_step_time is inf"),
        (6, "train_step_time is not a number: 'abc'"),
        (8, "4 cells where the header has 5"),
    ]


def test_plain_csv_with_cumulative_tokens(tmp_path):
    path = tmp_path / "steps.csv"
    path.write_text(
        "step,time,tokens,gpus,host\n"
        "100,30.0,409600,8,a\n"
        "200,40.0,819200,8,a\n"
        "\n"
        "300,35.0,1228800,8,a\n"  # the clock went back
        "300,50.0,1228800,8,a\n"
        "400,60.0,1638400,0,a\n"
        "500,70.0,2048000,8,a\n"
    )

    parsed = parse_file(path)

    assert parsed.format is LogFormat.PLAIN_CSV
    assert parsed.points == [
        StepPoint(step=100, time_s=0.0, tokens=0, gpus=8),
        StepPoint(step=200, time_s=10.0, tokens=409600, gpus=8),
        StepPoint(step=300, time_s=20.0, tokens=819200, gpus=8),
        StepPoint(step=500, time_s=40.0, tokens=1638400, gpus=8),
    ]
    assert parsed.problems == [(5, "time 35 is below the previous 40"), (7, "gpus is 0, below 1")]


def test_plain_csv_per_step_tokens_are_multiplied_by_the_steps_between_points():
    lines = ["step,time,tokens", "10,5,4096", "20,10,4096", "40,20,8192"]

    parsed = logs.parse(lines)

    assert [p.tokens for p in parsed.points] == [0, 10 * 4096, 10 * 4096 + 20 * 8192]


def test_a_gap_in_a_per_step_series_ends_its_running_total():
    lines = ["step,step_time,loss", "1,0.5,2", "2,,2", "3,0.5,2"]

    assert [p.time_s for p in logs.parse(lines).points] == [0.0, None, None]


@pytest.mark.parametrize(
    ("first_lines", "expected"),
    [
        (["{", '  "log_history": ['], LogFormat.HF_TRAINER_STATE),
        (['{"log_history": [{"loss": 1, "step": 1}]}'], LogFormat.HF_TRAINER_STATE),
        (["", '{"loss": 1, "step": 1}'], LogFormat.HF_JSON_LINES),
        (["epoch,step,train_loss"], LogFormat.LIGHTNING_CSV),
        (["\ufeffstep,time,tokens,gpus"], LogFormat.PLAIN_CSV),
    ],
)
def test_detect_format(first_lines, expected):
    assert logs.detect_format(first_lines) is expected


@pytest.mark.parametrize("first_lines", [[], ["", "  "], ["time,tokens"], ["hello"]])
def test_undetectable_logs_raise_value_error(first_lines):
    with pytest.raises(ValueError):
        logs.detect_format(first_lines)


def test_unknown_format_name_raises_value_error():
    with pytest.raises(ValueError):
        logs.parse(["step,time"], format="tensorboard")


def test_deeply_nested_json_is_reported_not_raised():
    deep = "[" * 100_000 + "]" * 100_000
    lines = ['{"step": 1, "loss": 1}', '{"step": 2, "loss": ' + deep + "}", "{" * 100_000]

    parsed = logs.parse(lines)

    assert [p.step for p in parsed.points] == [1]
    assert [line for line, _ in parsed.problems] == [2, 3]

    state = ["{", '"log_history": [', '{"step": 1, "loss": ' + deep + "}", "]}"]
    assert logs.parse(state).problems[0][0] == 3


def test_problems_beyond_the_cap_are_counted_not_kept():
    lines = ["step,time", *(f"{n},x" for n in range(1, 251))]

    parsed = logs.parse(lines)

    assert len(parsed.problems) == logs.MAX_PROBLEMS_KEPT
    assert parsed.problems_not_kept == 250 - logs.MAX_PROBLEMS_KEPT
    assert parsed.problems[0] == (2, "time is not a number: 'x'")
