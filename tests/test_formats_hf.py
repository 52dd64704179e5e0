"""The Hugging Face trainer_state.json reader (analysis/formats/hf.py).

Fixtures under tests/data/formats/hf/ were written by the real
``TrainerState.save_to_json`` of transformers 5.24.0 (installed without PyTorch; see
make_fixtures.py and hf/VERSION), with ``log_history`` entries shaped as ``Trainer.log``
appends them (``src/transformers/trainer.py``). Where transformers is installed, the
last test writes them again with it and checks that the reader sees the same.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import installed

from analysis.errors import BadLog, LogNotFound
from analysis.formats import detect, load_run

DATA = Path(__file__).parent / "data" / "formats" / "hf"


def state(history, **fields) -> str:
    """A trainer_state.json as TrainerState.save_to_json writes it."""
    doc = {"best_metric": None, "best_model_checkpoint": None, "epoch": 0, "global_step": 0,
           "log_history": history, **fields}  # fmt: skip
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write(tmp_path: Path, history, name: str = "trainer_state.json", **fields) -> Path:
    p = tmp_path / name
    p.write_text(state(history, **fields))
    return p


def test_fixture_eval_per_epoch():
    run = load_run(DATA / "epoch")
    assert run.format == "hf" and run.name == "epoch" and run.n_epochs == 10
    assert list(run.metrics.columns) == ["learning_rate", "grad_norm", "loss", "val_accuracy",
                                         "val_loss"]  # fmt: skip
    # Epoch 0: steps 20 and 40 logged (40 steps), epoch 1: 60, 80, 100 (NaN at 60).
    history = json.loads((DATA / "epoch" / "trainer_state.json").read_text())["log_history"]
    losses = {h["step"]: h["loss"] for h in history if "loss" in h}
    assert run.values("loss")[0] == pytest.approx((losses[20] * 20 + losses[40] * 20) / 40)
    assert math.isnan(run.values("loss")[1])  # the NaN token of step 60
    assert run.values("learning_rate")[1] == next(
        h["learning_rate"] for h in history if h.get("step") == 60
    )
    assert run.values("val_loss")[0] == history[2]["eval_loss"]
    # metric_for_best_model = accuracy, greater_is_better: found from best_metric.
    assert run.default_monitor == "val_accuracy"
    assert run.directions == {"loss": "min", "val_loss": "min", "val_accuracy": "max"}
    text = "\n".join(run.warnings)
    assert "left out 1 entry logged after training ended" in text
    assert "best_metric 0.795 at step 300 is val_accuracy's best (max)" in text
    assert "'epoch' k means" not in text  # evaluations are whole epochs here


def test_fixture_eval_steps_in_checkpoints():
    run = load_run(DATA / "steps")
    assert run.name == "steps/checkpoint-300" and run.n_epochs == 10
    text = "\n".join(run.warnings)
    assert "read checkpoint-300/trainer_state.json, the latest of 3 checkpoint(s)" in text
    assert "10 evaluations at steps 30 to 300" in text
    assert "'epoch' k means the k-th evaluation" in text
    assert run.default_monitor == "val_loss" and not run.has("val_runtime")


HISTORY = [
    {"epoch": 0.5, "learning_rate": 0.001, "loss": 2.0, "step": 10},
    {"epoch": 1.0, "learning_rate": 0.0009, "loss": 1.0, "step": 30},
    {"epoch": 1.0, "eval_loss": 1.5, "eval_runtime": 0.5, "step": 30},
    {"epoch": 2.0, "learning_rate": 0.0008, "loss": 0.5, "step": 60},
    {"epoch": 2.0, "eval_loss": 1.2, "step": 60},
]


def test_training_loss_is_step_weighted_and_rate_first(tmp_path):
    run = load_run(write(tmp_path, HISTORY))
    assert run.values("loss") == [pytest.approx((2.0 * 10 + 1.0 * 20) / 30), 0.5]
    assert run.values("learning_rate") == [0.001, 0.0008]
    assert run.values("val_loss") == [1.5, 1.2]
    assert any("changes within a row's interval" in w for w in run.warnings)


def test_several_eval_sets_at_one_step_are_one_row(tmp_path):
    history = [
        {"epoch": 0, "eval_a_loss": 9.0, "step": 0},  # trainer.evaluate() before train()
        {"epoch": 0, "eval_b_loss": 9.0, "step": 0},
        {"epoch": 1.0, "loss": 1.0, "step": 10},
        {"epoch": 1.0, "eval_a_loss": 0.9, "step": 10},
        {"epoch": 1.0, "eval_b_loss": 0.8, "step": 10},
        {"epoch": 2.0, "eval_a_loss": 0.7, "step": 20},
        {"epoch": 2.0, "eval_b_loss": 0.6, "step": 20},
    ]
    run = load_run(write(tmp_path, history))
    assert run.values("val_a_loss") == [0.9, 0.7] and run.values("val_b_loss") == [0.8, 0.6]
    assert run.values("loss") == [1.0, None]
    assert run.directions["val_a_loss"] == "min"
    assert any("evaluation at step 0" in w for w in run.warnings)


def test_no_evaluation_rows_are_training_entries(tmp_path):
    history = [
        {"epoch": 1.94, "learning_rate": 1e-3, "loss": 1.0, "step": 500},
        {"epoch": 3.88, "learning_rate": 9e-4, "loss": 0.5, "step": 1000},
    ]
    run = load_run(write(tmp_path, history))
    assert run.values("loss") == [1.0, 0.5]
    assert any("each training log entry is one row" in w for w in run.warnings)


def test_non_standard_tokens_and_test_entries(tmp_path):
    text = state(
        [
            {"epoch": 1.0, "loss": 1.0, "step": 10},
            {"epoch": 1.0, "eval_loss": 0.5, "step": 10},
            {"epoch": 2.0, "loss": 0.4, "step": 20},
            {"epoch": 2.0, "eval_loss": 0.4, "step": 20},
            {"epoch": 2.0, "step": 20, "train_runtime": 3.0, "train_loss": 0.7},
            {"epoch": 2.0, "step": 20, "test_loss": 0.45},
        ]
    )
    text = text.replace('"eval_loss": 0.5', '"eval_loss": Infinity').replace(
        '"loss": 0.4,', '"loss": NaN,'
    )
    p = tmp_path / "trainer_state.json"
    p.write_text(text)
    run = load_run(p)
    assert run.values("val_loss") == [math.inf, 0.4]
    assert math.isnan(run.values("loss")[1])
    assert not run.has("test_loss")
    assert any("logged after training ended (test_loss)" in w for w in run.warnings)


def test_huge_integers_are_infinite(tmp_path):
    p = tmp_path / "trainer_state.json"
    p.write_text(
        '{"best_metric": 1'
        + "0" * 400
        + ', "best_global_step": 1'
        + "0" * 400
        + ', "log_history": [{"step": 1, "loss": -1'
        + "0" * 400
        + "}]}"
    )
    assert load_run(p).values("loss") == [-math.inf]


def test_best_metric_ambiguous_is_not_guessed(tmp_path):
    history = [
        {"epoch": 1.0, "eval_a": 0.5, "eval_b": 0.5, "step": 10},
        {"epoch": 2.0, "eval_a": 0.4, "eval_b": 0.6, "step": 20},
    ]
    run = load_run(write(tmp_path, history, best_metric=0.5, best_global_step=10))
    assert run.default_monitor == "val_loss" and run.directions == {}


def test_detection(tmp_path):
    p = write(tmp_path, HISTORY, name="state_copy.json")
    assert detect(p).name == "hf"
    out = tmp_path / "out"
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text(state(HISTORY))
    assert detect(out).name == "hf"


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid JSON"),
    ('{"log_history": 3}', "no 'log_history' list"),
    ('{"log_history": [{"loss": 1.0}]}', "log_history[0] has no whole 'step'"),
    ('{"log_history": [5]}', "log_history[0] is not an object"),
    ('{"log_history": []}', "no training or evaluation entries"),
    ('{"log_history": [{"step": 1, "loss": "x"}]}', "no training or evaluation entries"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
    # Found by the fuzzer (OverflowError): an integer beyond float64.
    ('{"log_history": [{"step": 1' + "0" * 400 + ', "loss": 1.0}]}', "has no whole 'step'"),
])  # fmt: skip
def test_refusals(tmp_path, text, message):
    p = tmp_path / "trainer_state.json"
    p.write_text(text)
    with pytest.raises(BadLog) as info:
        load_run(p)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_empty_output_folder(tmp_path):
    with pytest.raises(LogNotFound):
        load_run(tmp_path)


@pytest.mark.skipif(
    not installed("transformers"),
    reason="transformers is not installed (see make_fixtures.py)",
)
def test_the_real_writer_writes_the_fixtures(tmp_path):
    shutil.copy(DATA.parent / "make_fixtures.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_fixtures.py"), "hf"], check=True)
    for sub in ("epoch", "steps/checkpoint-300"):
        again = (tmp_path / "hf" / sub / "trainer_state.json").read_text()
        assert again == (DATA / sub / "trainer_state.json").read_text()
