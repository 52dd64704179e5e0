from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import MissingMetric
from replay.engine.policies import early_stopping, reduce_lr_on_plateau
from replay.engine.rates import counterfactual_from
from replay.sweeping.grid import GridTooLarge
from replay.sweeping.sweep import Grid, RunFacts, check_shadow, sweep

VAL = [0.50, 0.40, 0.35, 0.36, 0.34, 0.37, 0.38, 0.39, 0.40, 0.41]
TEST = [0.52, 0.41, 0.36, 0.35, 0.36, 0.38, 0.39, 0.40, 0.41, 0.43]
TRAIN = [0.6, 0.45, 0.38, 0.33, 0.30, 0.28, 0.27, 0.26, 0.25, 0.24]


def facts(**metrics) -> RunFacts:
    n = len(next(iter(metrics.values())))
    return RunFacts(name="r", source="r.csv", metrics=metrics, columns=list(metrics), n_epochs=n)


def es_grid(**kw) -> Grid:
    return Grid(policies=("early_stopping",), **kw)


def test_record_count_matches_grid_size():
    grid = Grid(policies=("early_stopping", "reduce_lr_on_plateau", "prechelt"))
    f = facts(loss=TRAIN, val_loss=VAL, test_loss=TEST, learning_rate=[1e-3] * 10)
    result = sweep([f], grid)
    assert len(result.records) == grid.size()
    by_policy = {p: sum(r["policy"] == p for r in result.records) for p in grid.policies}
    assert by_policy == grid.counts()


def test_regret_and_kept_checkpoint_fields():
    f = facts(val_loss=VAL, test_loss=TEST)
    f.checkpoints = {e: f"run/checkpoints/epoch-{e + 1:03d}.keras" for e in range(10)}
    result = sweep(
        [f], es_grid(patience=(2,), min_delta=(0.0,), restore_best_weights=(False, True))
    )
    plain, restored = result.records
    # val: best 0.34 at epoch 4; 0.37, 0.38 -> wait 2 at epoch 6: stop.
    assert (plain["stopped_epoch"], plain["final_epoch"], restored["final_epoch"]) == (6, 6, 4)
    # test_loss best is 0.35 at epoch 3 (the oracle); regret = value at kept epoch - 0.35.
    assert plain["regret"] == pytest.approx(0.39 - 0.35)
    assert restored["regret"] == pytest.approx(0.36 - 0.35)
    assert restored["checkpoint"] == "run/checkpoints/epoch-005.keras"
    assert restored["final_metrics"] == {"val_loss": 0.34, "test_loss": 0.36}
    assert restored["regret_metric"] == "test_loss"
    (oracle,) = result.oracles
    assert (oracle["oracle_epoch"], oracle["oracle_value"]) == (3, 0.35)


def test_accuracy_regret_sign_is_zero_best():
    acc = [0.90, 0.95, 0.97, 0.96, 0.955]
    f = facts(val_accuracy=acc, test_accuracy=[0.9, 0.94, 0.96, 0.965, 0.95])
    (r,) = sweep([f], es_grid(monitors=("val_accuracy",), patience=(1,), min_delta=(0.0,),
                              restore_best_weights=(False,))).records  # fmt: skip
    assert r["params"]["mode"] == "max"
    assert r["stopped_epoch"] == 3
    assert r["regret"] == pytest.approx(0.965 - 0.965)
    (r,) = sweep([f], es_grid(monitors=("val_accuracy",), patience=(1,), min_delta=(0.0,),
                              restore_best_weights=(True,))).records  # fmt: skip
    assert r["final_epoch"] == 2 and r["regret"] == pytest.approx(0.965 - 0.96)


def test_without_test_metrics_regret_uses_validation_and_says_so():
    result = sweep([facts(val_loss=VAL)], es_grid(patience=(2,), min_delta=(0.0,)))
    assert all(r["regret_metric"] == "val_loss" for r in result.records)
    assert any("no test metrics" in n and "val_loss" in n for n in result.notes)


def test_missing_monitor_lists_columns_and_suggests():
    with pytest.raises(MissingMetric) as info:
        sweep([facts(val_loss=VAL, loss=TRAIN)], es_grid(monitors=("val_los",)))
    assert str(info.value) == (
        "r.csv: no metric 'val_los' (the log has: val_loss, loss); did you mean 'val_loss'?"
    )


@given(
    curve=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
        max_size=40,
    ),
)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_sweep_records_equal_single_policy_calls(curve):
    f = facts(val_loss=curve)
    grid = Grid(
        policies=("early_stopping", "reduce_lr_on_plateau"),
        patience=(0, 1, 3),
        min_delta=(0.0, 0.01),
        baseline=(None, 0.5),
        start_from_epoch=(0, 2),
        factor=(0.5,),
        cooldown=(0, 2),
        min_lr=(0.0, 1e-4),
        initial_lr=1e-3,
    )
    for r in sweep([f], grid).records:
        p = r["params"]
        if r["policy"] == "early_stopping":
            e = early_stopping(curve, **p)
            assert (r["stopped_epoch"], r["best_epoch"], r["final_epoch"], r["epochs_trained"]) == (
                e.stopped_epoch, e.best_epoch, e.final_epoch, e.epochs_trained,
            )  # fmt: skip
        else:
            lr = reduce_lr_on_plateau(curve, **p)
            assert r["lr"] == list(lr.lr) and r["reductions"] == list(lr.reductions)


@pytest.mark.parametrize(
    "schedule, reductions, recorded, expected",
    [
        ([1.0, 1.0, 0.5, 0.5], [1], None, 2),  # no LR column: after the first cut
        ([1.0, 1.0, 1.0], [2], None, None),  # a cut at the last epoch changes nothing recorded
        ([1.0, 1.0, 1.0], [], None, None),
        ([1.0, 1.0, 0.5, 0.5], [1], [1.0, 1.0, 0.5, 0.5], None),  # the log ran this schedule
        ([1.0, 1.0, 0.5, 0.25], [1, 2], [1.0, 1.0, 0.5, 0.5], 3),
        ([1.0, 1.0, 1.0], [], [1.0, 0.5, 0.5], 1),  # the log was cut, the policy was not
        ([1.0, 1.0, 0.5], [1], [1.0, None, 0.5], None),  # unlogged cells are not evidence
    ],
)
def test_counterfactual_from(schedule, reductions, recorded, expected):
    assert counterfactual_from(schedule, reductions, recorded) == expected


def test_lr_policy_without_a_rate_runs_on_the_relative_scale():
    """No learning rate in the log and no --initial-lr: schedules in multiples of the
    first epoch's rate; settings that need an absolute rate (min_lr > 0) are skipped with
    a note, not the whole sweep."""
    grid = Grid(policies=("reduce_lr_on_plateau",), factor=(0.5,), patience=(1,),
                min_lr=(0.0, 1e-5))  # fmt: skip
    result = sweep([facts(val_loss=VAL)], grid)
    (r,) = result.records
    assert r["lr_scale"] == "relative" and r["params"]["initial_lr"] is None
    assert r["params"]["min_lr"] == 0.0
    # VAL: no improvement at epochs 3, 5, 6, 7, 8, 9 -> cut after each (patience 1).
    assert r["reductions"] == [3, 5, 6, 7, 8, 9]
    assert r["lr"][:5] == [1.0, 1.0, 1.0, 1.0, 0.5] and r["final_lr"] == 0.5**6
    assert (
        "r: min_lr 1e-05 needs an absolute rate; those settings are skipped (pass "
        "--initial-lr to replay them)." in result.notes
    )
    result = sweep([facts(val_loss=VAL)], replace(grid, initial_lr=0.1))
    assert {r["params"]["initial_lr"] for r in result.records} == {0.1}
    assert {r["lr_scale"] for r in result.records} == {"absolute"}
    assert len(result.records) == 2


def test_keras2_lr_column_is_the_learning_rate():
    """tf.keras's ReduceLROnPlateau logs `lr` (the rate during the epoch, before its cut):
    the setting that produced the run replays exactly, not 'counterfactual from epoch 4'."""
    made = reduce_lr_on_plateau(VAL, factor=0.5, patience=1, initial_lr=0.01)
    f = facts(val_loss=VAL, lr=list(made.lr))
    grid = Grid(policies=("reduce_lr_on_plateau",), factor=(0.5,), patience=(1,))
    (r,) = sweep([f], grid).records
    assert r["counterfactual_from"] is None and r["lr_scale"] == "absolute"
    assert r["params"]["initial_lr"] == made.lr[0] and r["lr"] == list(made.lr)


def test_keras2_accuracy_names_answer_keras3_monitors():
    acc = [0.5, 0.6, 0.7, 0.65, 0.6]
    grid = es_grid(monitors=("val_accuracy",), patience=(1,), min_delta=(0.0,))
    result = sweep([facts(acc=acc, val_acc=acc)], grid)
    assert {r["best_epoch"] for r in result.records} == {2}
    assert {r["params"]["mode"] for r in result.records} == {"max"}
    assert "r: --monitor val_accuracy reads its column val_acc." in result.notes


def test_prechelt_converts_accuracy_to_error_explicitly():
    acc = [0.5, 0.6, 0.7, 0.65, 0.6, 0.55]
    result = sweep(
        [facts(accuracy=acc, val_accuracy=acc)],
        Grid(policies=("prechelt",), monitors=("val_accuracy",), gl_alpha=(5.0,), pq_alpha=(),
             up_strips=()),
    )  # fmt: skip
    (r,) = result.records
    assert r["params"]["error"] == "1 - val_accuracy"
    # errors 0.5, 0.4, 0.3, 0.35 -> GL(3) = 16.7 > 5: stop at 3, keep epoch 2.
    assert (r["stopped_epoch"], r["final_epoch"]) == (3, 2)
    assert any("1 - val_accuracy" in n for n in result.notes)


def test_grid_too_large_is_refused_before_work():
    # 2,003,000 settings a run: the memory estimate decides, unless --max-settings does.
    grid = Grid(patience=tuple(range(1000)), min_delta=tuple(range(1000)), baseline=(None,) * 1)
    need = grid.memory_needed(n_runs=11)
    with pytest.raises(GridTooLarge, match="the grid has 22,033,000 settings, whose sweep "
                       "needs about"):  # fmt: skip
        grid.check(n_runs=11, available=need)
    grid.check(n_runs=11, available=2 * need)
    with pytest.raises(GridTooLarge, match="more than --max-settings 10,000,000"):
        grid.check(n_runs=11, max_settings=10**7)
    grid.check(n_runs=11, max_settings=10**8, available=1)  # the user's bound overrides


def test_shadow_check_counts_matches_and_mismatches():
    f = facts(val_loss=VAL, learning_rate=[0.1] * 10)
    es = early_stopping(VAL, patience=2)
    shadow = [
        {"callback": "EarlyStopping", "params": {"monitor": "val_loss", "patience": 2},
         "stopped_epoch": es.stopped_epoch, "best_epoch": es.best_epoch},
        {"callback": "EarlyStopping", "params": {"monitor": "val_loss", "patience": 5},
         "stopped_epoch": 3, "best_epoch": 4},
        {"callback": "ReduceLROnPlateau", "params": {"monitor": "val_loss", "patience": 1,
         "factor": 0.5}, "reductions": [3, 5, 6, 7, 8, 9]},
    ]  # fmt: skip
    check = check_shadow(f, shadow)
    assert (check.total, check.matched) == (5, 4)
    assert len(check.mismatches) == 1 and "stopped_epoch replay=9 keras=3" in check.mismatches[0]


def test_empty_curve_is_censored_with_no_kept_epoch():
    f = facts(val_loss=[None, None], test_loss=[None, None])
    result = sweep([f], es_grid(patience=(1,), min_delta=(0.0,), restore_best_weights=(True,)))
    (r,) = result.records
    assert r["censored"] and r["final_epoch"] == 1 and r["regret"] is None


def test_shadow_check_covers_only_the_epochs_run_json_had_seen():
    # Killed between the metrics row of epoch 4 and run.json: the manifest (and its shadow
    # decisions) cover epochs 0-3. Over all 5 rows patience 2 stops at epoch 4; over the
    # 4 the shadow saw, it had not stopped.
    f = facts(val_loss=[0.5, 0.4, 0.3, 0.35, 0.36])
    shadow = [{"callback": "EarlyStopping", "params": {"monitor": "val_loss", "patience": 2},
               "stopped_epoch": None, "best_epoch": 2}]  # fmt: skip
    assert check_shadow(f, shadow).matched == 1
    assert check_shadow(f, shadow, epochs=4).ok
