import math

import pytest

from analysis.errors import ReplayError
from replay.engine.grid import GridError, parse_values
from replay.engine.policies import PolicyError
from replay.sweeping.sweep import DEFAULT_GRID, Grid


@pytest.mark.parametrize(
    "text, kwargs, expected",
    [
        ("3..10", {"integer": True}, [3, 4, 5, 6, 7, 8, 9, 10]),
        ("3..10:2", {"integer": True}, [3, 5, 7, 9]),
        ("1,2,5..8", {"integer": True}, [1, 2, 5, 6, 7, 8]),
        ("5", {"integer": True}, [5]),
        (" 2 , 1 ", {"integer": True}, [2, 1]),
        ("1,1,1..2", {"integer": True}, [1, 2]),
        ("0,0.001,0.01", {}, [0.0, 0.001, 0.01]),
        # decimal-exact steps: no 0.30000000000000004
        ("0..0.3:0.1", {}, [0.0, 0.1, 0.2, 0.3]),
        ("0.1..0.5:0.2", {}, [0.1, 0.3, 0.5]),
        ("1e-4,1e-3", {}, [0.0001, 0.001]),
        ("none,0.5", {"allow_none": True}, [None, 0.5]),
        ("-1..1", {"integer": True}, [-1, 0, 1]),
        ("3..3", {"integer": True}, [3]),  # equal bounds: one value, as written
        ("0..2.5", {}, [0.0, 1.0, 2.0]),  # more than its start: the step is the user's
    ],
)
def test_parse_values(text, kwargs, expected):
    assert parse_values(text, "--x", **kwargs) == expected


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("10..3", {"integer": True}, "--x: range '10..3' runs backwards; write 3..10."),
        ("3..x", {"integer": True}, "--x: 'x' in '3..x' is not a number."),
        ("1..5:0", {"integer": True}, "--x: step in '1..5:0' must be positive."),
        ("1..5:-1", {"integer": True}, "--x: step in '1..5:-1' must be positive."),
        ("-1", {"integer": True, "minimum": 0}, "--x: -1 is below the minimum 0 (in '-1')."),
        ("2.5", {"integer": True}, "--x: '2.5' in '2.5' must be a whole number."),
        ("1,,2", {}, "--x: empty item in '1,,2'."),
        ("", {}, "--x: empty value"),
        ("..3", {}, "--x: range '..3' needs a start and a stop"),
        ("nan", {}, "--x: 'nan' in 'nan' must be finite."),
        ("none", {}, "--x: 'none' in 'none' is not a number."),
        ("__import__('os')", {}, "is not a number"),
        ("0..1e9", {"integer": True}, "has 1,000,000,001 values"),
        # issue 21: a step that leaves only the start of a range whose bounds differ
        (
            "0..0.01",
            {},
            "--x: range '0..0.01' gives only its start 0 (its step is 1); give "
            "a step smaller than the range, e.g. 0..0.01:0.001.",
        ),  # fmt: skip
        ("0.005..0.01", {}, "e.g. 0.005..0.01:0.0005."),
        (
            "3..4:2",
            {"integer": True},
            "--x: range '3..4:2' gives only its start 3 (its step "
            "is 2); give a step smaller than the range, e.g. 3..4:1.",
        ),  # fmt: skip
    ],
)
def test_parse_values_errors_name_the_token(text, kwargs, message):
    with pytest.raises(GridError) as info:
        parse_values(text, "--x", **kwargs)
    assert message in str(info.value)


def test_a_million_value_range_parses_in_linear_time():
    # Issue 10: de-duplicating with `item not in list` made this quadratic (hours). The
    # bound guards against that, not a speed target (benchmarks/ measure speed): it is
    # loose enough for a busy 2-core machine (this took 1.2 s there while others ran).
    import time

    start = time.perf_counter()
    values = parse_values("1..1000000,5,1000000", "--patience", integer=True, minimum=0)
    assert time.perf_counter() - start < 20.0
    assert len(values) == 1_000_000 and values[:3] == [1, 2, 3] and values[-1] == 1_000_000


# ---------------------------------------------------------------- Grid: the rules about values


@pytest.mark.parametrize(
    ("given", "lr_min_delta"),
    [
        ({}, (1e-4,)),  # neither: ReduceLROnPlateau's own default
        ({"min_delta": (0.0, 0.01)}, (0.0, 0.01)),  # follows --min-delta
        ({"min_delta": (0.01,), "lr_min_delta": (0.5,)}, (0.5,)),  # its own wins
        ({"min_delta": None, "lr_min_delta": None}, (1e-4,)),  # None: not given
    ],
)
def test_lr_min_delta_follows_min_delta_unless_given(given, lr_min_delta):
    assert Grid.from_options(**given).lr_min_delta == lr_min_delta
    assert Grid.for_pick(**given).lr_min_delta == lr_min_delta


def test_from_options_keeps_the_base_where_not_given_and_each_runs_own_monitor():
    grid = Grid.from_options(patience=(3,), mode="min", initial_lr=None)
    assert grid == Grid(monitors=(), patience=(3,), mode="min")
    assert Grid.from_options(monitors=("loss",)).monitors == ("loss",)
    # One default, however the grid is built (issue 17: the two used to differ).
    assert Grid.from_options() == DEFAULT_GRID == Grid() and DEFAULT_GRID.monitors == ()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"factor": (0.5, 1.0)}, "--factor: 1 is out of range; a factor must be > 0 and < 1."),
        ({"factor": (0.0,)}, "--factor: 0 is out of range; a factor must be > 0 and < 1."),
        ({"factor": (-0.5,)}, "--factor: -0.5 is out of range; a factor must be > 0 and < 1."),
        ({"initial_lr": 0.0}, "--initial-lr must be a positive number but got 0.0."),
        ({"initial_lr": -1e-3}, "--initial-lr must be a positive number but got -0.001."),
        ({"initial_lr": math.nan}, "--initial-lr must be a positive number but got nan."),
        ({"initial_lr": math.inf}, "--initial-lr must be a positive number but got inf."),
    ],
)
def test_bad_factor_and_initial_lr_are_grid_errors(given, message):
    for build in (Grid.from_options, Grid.for_pick):
        with pytest.raises(GridError) as info:
            build(**given)
        assert str(info.value) == message


def test_pick_takes_keras_defaults_where_not_given():
    assert Grid.for_pick() == Grid(
        policies=("early_stopping",),
        monitors=(),
        patience=(0,),
        min_delta=(0.0,),
        restore_best_weights=(False,),
        lr_patience=(10,),
        lr_min_delta=(1e-4,),
        factor=(0.1,),
        gl_alpha=(2.0,),
        pq_alpha=(1.0,),
        up_strips=(3,),
        save_best_only=(False,),
    )  # fmt: skip  (lr_patience: Keras's ReduceLROnPlateau default, for an LR pick)
    assert Grid.for_pick(patience=(5,), restore_best_weights=(True,)).size() == 1


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({}, {"gl_alpha": (2.0,), "pq_alpha": (), "up_strips": ()}),
        ({"pq_alpha": (0.5,)}, {"gl_alpha": (), "pq_alpha": (0.5,), "up_strips": ()}),
        ({"up_strips": (4,)}, {"gl_alpha": (), "pq_alpha": (), "up_strips": (4,)}),
    ],
)
def test_pick_keeps_the_one_prechelt_criterion_given(given, kept):
    grid = Grid.for_pick(policies=("prechelt",), **given)
    assert {k: getattr(grid, k) for k in kept} == kept and grid.size() == 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"monitors": ("val_loss", "loss")},
         "--monitor: pick takes one metric but got 'val_loss,loss'."),
        ({"restore_best_weights": (False, True)},
         "--restore-best-weights: pick takes yes or no, not both."),
        ({"policies": ("early_stopping", "prechelt")}, "pick chooses one checkpoint, so it "
         "takes one policy: --policy early_stopping, reduce_lr_on_plateau, prechelt, "
         "early_stopping+reduce_lr_on_plateau, model_checkpoint."),
        ({"policies": ("prechelt",), "gl_alpha": (1.0,), "up_strips": (2,)},
         "pick takes one Prechelt criterion: --gl-alpha, --pq-alpha or --up-strips, not several."),
    ],
)  # fmt: skip
def test_pick_refuses_what_is_not_one_setting(given, message):
    with pytest.raises(ReplayError) as info:
        Grid.for_pick(**given)
    assert str(info.value).startswith(message)


def test_policy_errors_are_replay_errors_and_value_errors():
    # One type for the CLI to catch; still a ValueError, as Keras raises for bad settings.
    assert issubclass(PolicyError, ReplayError) and issubclass(PolicyError, ValueError)
