"""Write the dialects' truth tables by running the real frameworks once.

PyTorch, Lightning and transformers are not dependencies of callback-replay (the PyPI
torch wheel alone is gigabytes); the dialects that reproduce them are checked in the
normal test suite against the JSON tables this script writes
(``tests/test_dialect_tables.py``). Run it in a throwaway virtual environment::

    python3 -m venv /tmp/torchv
    /tmp/torchv/bin/pip install torch==2.13.0 lightning transformers
    mkdir -p /tmp/ulw && /tmp/torchv/bin/pip download --no-deps -d /tmp/ulw \\
        ultralytics==8.3.0 ultralytics==8.4.190
    /tmp/torchv/bin/python tests/data/dialects/make_truth_tables.py --ultralytics-wheels /tmp/ulw

(used here: torch 2.13.0+cpu, lightning 2.6.6, transformers 5.24.0, ultralytics 8.3.0 and
8.4.190). Nothing of callback-replay is imported: every expected answer comes from the
framework's own objects, driven the way their trainers drive them:

- torch: a real ``SGD`` with two param groups and a real ``ReduceLROnPlateau``; ``step``
  once per epoch with a value; the rates of every group after each step.
- Lightning: the real ``EarlyStopping._run_early_stopping_check`` with a stand-in trainer
  (``callback_metrics`` holds float32 tensors, as ``self.log`` stores them, and keeps the
  last value between validations); the cases of Lightning's own
  ``tests/tests_pytorch/callbacks/test_early_stopping.py`` are real ``Trainer.fit`` runs of
  ``BoringModel``.
- transformers: the real ``EarlyStoppingCallback.on_evaluate`` followed by the real
  ``Trainer._determine_best_metric`` (called on a stand-in with ``args`` and a real
  ``TrainerState``), in the order ``Trainer._maybe_log_save_evaluate`` calls them.
- Ultralytics: the ``EarlyStopping`` class of each wheel's ``ultralytics/utils/torch_utils.py``
  (its source executed as is, with a stand-in logger), called with 1-based epochs as
  ``BaseTrainer._do_train`` calls it.

Non-finite values are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import types
import warnings
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_GENERATED = 250


def enc(x):
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    if isinstance(x, (list, tuple)):
        return [enc(v) for v in x]
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    raise TypeError(x)


def write(name: str, meta: dict, cases: list[dict]) -> None:
    path = HERE / name
    path.write_text(json.dumps({**meta, "cases": enc(cases)}, separators=(",", ":")) + "\n")
    print(f"{path.name}: {len(cases)} cases")


# ---------------------------------------------------------------------------- curves


def curve(rng: random.Random, *, allow_none: bool = True, positive: bool = False) -> list:
    n = rng.randint(0, 30)
    kind = rng.choice(["walk", "plateau", "pool", "noise"])
    scale = rng.choice([1e-3, 0.1, 1.0, 1.0, 10.0, 1e4])
    steps = [rng.choice([0.0, 0.0, -1.0, 1.0, -0.5, 0.25, 1e-5, -1e-5]) for _ in range(3)]
    x = rng.uniform(-1, 1) * scale
    out = []
    pool = [rng.uniform(-1, 1) * scale for _ in range(3)]
    for _ in range(n):
        if kind == "walk":
            x += rng.choice(steps) * scale
            out.append(x)
        elif kind == "plateau":
            out.append(round(x, 2) if rng.random() < 0.7 else x + rng.choice(steps) * scale)
        elif kind == "pool":
            out.append(rng.choice(pool))
        else:
            out.append(rng.uniform(-1, 1) * scale)
    out = [float(f"{v:.5g}") for v in out]  # short in the JSON; ties stay ties
    if positive:
        out = [abs(v) for v in out]
    for _ in range(rng.randint(0, 3)):
        if out:
            out[rng.randrange(n)] = rng.choice(
                [math.nan, math.inf, -math.inf, 0.0, None if allow_none else 0.0]
            )
    return out


# ---------------------------------------------------------------------------- torch


def torch_run(values, initial_lr, steps=None, **params):
    import torch

    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    lrs = initial_lr if isinstance(initial_lr, list) else [initial_lr, initial_lr]
    opt = torch.optim.SGD([{"params": [w1], "lr": lrs[0]}, {"params": [w2], "lr": lrs[1]}])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **params)
    after = []
    for v in values[:steps]:
        if v is not None:
            opt.step()
            sched.step(v)
        after.append([float(g["lr"]) for g in opt.param_groups])
    return after


PYTORCH_TESTS = [  # pytorch test/optim/test_lrscheduler.py, TestLRScheduler
    ("test_reduce_lr_on_plateau1", 10, [10 - i * 0.0167 for i in range(20)],
     {"threshold_mode": "abs", "mode": "min", "threshold": 0.01, "patience": 5, "cooldown": 5},
     [[0.5] * 20]),
    ("test_reduce_lr_on_plateau2", 22, [10 - i * 0.0165 for i in range(22)],
     {"patience": 5, "cooldown": 0, "threshold_mode": "abs", "mode": "min", "threshold": 0.1},
     [[0.5] * 6 + [0.05] * 7 + [0.005] * 7 + [0.0005] * 2]),
    ("test_reduce_lr_on_plateau3", 22, [-0.8] * 2 + [-0.234] * 20,
     {"mode": "max", "patience": 5, "cooldown": 5, "threshold_mode": "abs"},
     [[0.5] * (2 + 6) + [0.05] * (5 + 6) + [0.005] * 4]),
    ("test_reduce_lr_on_plateau4", 20, [1.5 * (1.025**i) for i in range(20)],
     {"mode": "max", "patience": 3, "threshold_mode": "rel", "threshold": 0.1}, [[0.5] * 20]),
    ("test_reduce_lr_on_plateau5", 20, [1.5 * (1.005**i) for i in range(20)],
     {"mode": "max", "threshold_mode": "rel", "threshold": 0.1, "patience": 5, "cooldown": 5},
     [[0.5] * 6 + [0.05] * (5 + 6) + [0.005] * 4]),
    ("test_reduce_lr_on_plateau6", 20, [1.5 * (0.85**i) for i in range(20)],
     {"mode": "min", "threshold_mode": "rel", "threshold": 0.1}, [[0.5] * 20]),
    ("test_reduce_lr_on_plateau7", 20, [1] * 7 + [0.6] + [0.5] * 12,
     {"mode": "min", "threshold_mode": "rel", "threshold": 0.1, "patience": 5, "cooldown": 5},
     [[0.5] * 6 + [0.05] * (5 + 6) + [0.005] * 4]),
    ("test_reduce_lr_on_plateau8", 20, [1.5 * (1.005**i) for i in range(20)],
     {"mode": "max", "threshold_mode": "rel", "min_lr": [0.4, 0.3], "threshold": 0.1,
      "patience": 5, "cooldown": 5},
     [[0.5] * 6 + [0.4] * 14, [0.5] * 6 + [0.3] * 14]),
]  # fmt: skip


def torch_table(rng: random.Random) -> None:
    import torch

    cases = []
    for name, epochs, metrics, params, targets in PYTORCH_TESTS:
        values = [float(m) for m in metrics[:epochs]]
        cases.append({"id": name, "source": f"pytorch test/optim/test_lrscheduler.py::{name}",
                      "values": values, "initial_lr": [0.5, 0.5], "params": params,
                      "after": torch_run(values, [0.5, 0.5], **params),
                      "torch_test_targets": [t[:epochs] for t in targets]})  # fmt: skip
    traps = [
        ("issue-12-patience-1", [1.0, 1.1, 1.2], {"patience": 1}),
        ("eps-blocks-tiny-cut", [1.0] * 6, {"patience": 0, "factor": 0.5, "eps": 0.1}),
        ("cooldown-forgets-bad-epochs", [1.0] + [2.0] * 9, {"patience": 1, "cooldown": 2}),
        ("rel-threshold-negative-best", [-1.0, -1.00005, -1.2], {"patience": 0}),
        ("nan-is-bad", [1.0, math.nan, math.nan], {"patience": 1}),
        ("min-lr-floor-then-stuck", [1.0] * 8, {"patience": 0, "min_lr": 0.03}),
    ]
    for name, values, params in traps:
        cases.append({"id": name, "source": "issue 12 / torch/optim/lr_scheduler.py",
                      "values": values, "initial_lr": [0.1, 0.1], "params": params,
                      "after": torch_run(values, [0.1, 0.1], **params)})  # fmt: skip
    for i in range(N_GENERATED):
        values = curve(rng)
        lr0 = rng.choice([0.1, 1e-3, 0.5, 1.0, 3e-4])
        lrs = [lr0, rng.choice([lr0, lr0 * 10])]
        params = {
            "mode": rng.choice(["min", "max"]),
            "factor": rng.choice([0.1, 0.5, 0.2, 1 / 3, 0.9, 0.999]),
            "patience": rng.randint(0, 5),
            "threshold": rng.choice([1e-4, 0.0, 0.01, 0.1, 1.0]),
            "threshold_mode": rng.choice(["rel", "abs"]),
            "cooldown": rng.randint(0, 3),
            "min_lr": rng.choice([0.0, 0.0, [lr0 * 0.01, lr0 * 0.05], lr0 * 0.001]),
            "eps": rng.choice([1e-8, 1e-8, 0.0, lr0 * 0.3]),
        }
        cases.append({"id": f"generated-{i}", "source": "generated", "values": values,
                      "initial_lr": lrs, "params": params,
                      "after": torch_run(values, lrs, **params)})  # fmt: skip
    write(
        "torch_plateau.json",
        {
            "framework": f"torch {torch.__version__}",
            "what": "param-group rates after each epoch's step",
        },
        cases,
    )


# ---------------------------------------------------------------------------- Lightning


def lightning_standin(values, check_on_train_epoch_end, **params):
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    callback = EarlyStopping(monitor="m", **params)
    trainer = types.SimpleNamespace(
        callback_metrics={}, fast_dev_run=False, should_stop=False, current_epoch=0,
        strategy=types.SimpleNamespace(reduce_boolean_decision=lambda x, all=False: x),
    )  # fmt: skip
    stopped, checks = None, 0
    for epoch, v in enumerate(values):
        trainer.current_epoch = epoch
        if v is not None:
            trainer.callback_metrics["m"] = torch.tensor(v, dtype=torch.float32)
        elif not check_on_train_epoch_end or "m" not in trainer.callback_metrics:
            continue
        checks += 1
        callback._run_early_stopping_check(trainer)
        if trainer.should_stop:
            stopped = epoch
            break
    reason = callback.stopping_reason.name.lower()
    return {"stopped_epoch": stopped, "reason": reason, "checks": checks}


def lightning_fit(values, trainer_kwargs=None, **params):
    import torch
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.demos.boring_classes import BoringModel

    class Model(BoringModel):
        def on_validation_epoch_end(self):
            self.log("m", torch.tensor(values[min(self.current_epoch, len(values) - 1)]))

    callback = EarlyStopping(monitor="m", **params)
    trainer = Trainer(callbacks=[callback], max_epochs=len(values), logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0,
                      limit_train_batches=2, limit_val_batches=2,
                      **(trainer_kwargs or {}))  # fmt: skip
    trainer.fit(Model())
    stopped = trainer.current_epoch - 1 if trainer.current_epoch < len(values) else None
    if callback.stopping_reason.name == "NOT_STOPPED":
        stopped = None
    return {"stopped_epoch": stopped, "reason": callback.stopping_reason.name.lower()}


LIGHTNING_TESTS = [  # Lightning tests/tests_pytorch/callbacks/test_early_stopping.py
    ("test_early_stopping_patience-0", [6, 5, 5, 5, 5, 5], {"patience": 3}, 4),
    ("test_early_stopping_patience-1", [6, 5, 4, 4, 3, 3], {"patience": 1}, 3),
    ("test_early_stopping_patience-2", [6, 5, 6, 5, 5, 5], {"patience": 3}, 4),
    ("test_early_stopping_thresholds-0", [8, 4, 2, 3, 4, 5, 8, 10], {}, 5),
    ("test_early_stopping_thresholds-1", [9, 8, 7, 6, 5, 6, 4, 3, 2, 1],
     {"stopping_threshold": 2.9}, 8),
    ("test_early_stopping_thresholds-2", [9, 4, 2, 16, 32, 64], {"divergence_threshold": 15.9}, 3),
    ("test_early_stopping_on_non_finite_monitor-inf", [4, 3, math.inf, 2, 1], {}, 2),
    ("test_early_stopping_on_non_finite_monitor-nan", [4, 3, math.nan, 2, 1], {}, 2),
    ("test_multiple_early_stopping_callbacks-cba", [0] * 8, {"patience": 3}, 3),
    ("test_early_stopping_reasons-patience", [10.0] * 10, {"patience": 2}, 2),
    ("test_early_stopping_reasons-stopping_threshold", [5.0, 3.0, 1.0, 0.5] + [0.1] * 6,
     {"stopping_threshold": 0.6}, 3),
    ("test_early_stopping_reasons-divergence", [1.0, 2.0, 5.0, 10.0] + [15.0] * 6,
     {"divergence_threshold": 8.0}, 3),
    ("test_early_stopping_reasons-nan", [1.0, 0.5] + [math.nan] * 8, {}, 2),
    ("test_early_stopping_reasons-not_stopped", [5.0, 4.0, 3.0], {"patience": 3}, None),
]  # fmt: skip


def lightning_table(rng: random.Random) -> None:
    import lightning

    cases = []
    for name, values, params, expected in LIGHTNING_TESTS:
        values = [float(v) for v in values]
        fit = lightning_fit(values, **params)
        cases.append({"id": name, "source": f"Lightning tests_pytorch/callbacks/"
                      f"test_early_stopping.py::{name.split('-')[0]}", "values": values,
                      "params": params, "check_on_train_epoch_end": True, "real": fit,
                      "standin": lightning_standin(values, True, **params),
                      "lightning_test_expected_stop_epoch": expected})  # fmt: skip
    # Validation every other epoch, checked at each training epoch's end: stale values.
    stale = [5.0, 5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    fit = lightning_fit(stale, trainer_kwargs={"check_val_every_n_epoch": 2}, patience=3,
                        check_on_train_epoch_end=True, strict=False)  # fmt: skip
    curve_ = [None if e % 2 == 0 else v for e, v in enumerate(stale)]
    cases.append({"id": "stale-values-count-as-checks", "source": "issue 12", "values": curve_,
                  "params": {"patience": 3}, "check_on_train_epoch_end": True, "real": fit,
                  "standin": lightning_standin(curve_, True, patience=3)})  # fmt: skip
    for i in range(N_GENERATED):
        values = curve(rng)
        params = {
            "mode": rng.choice(["min", "max"]),
            "patience": rng.randint(0, 5),
            "min_delta": rng.choice([0.0, 0.0, 1e-4, 0.01, -0.01, 0.5, -0.5, 1e-9]),
            "check_finite": rng.random() < 0.7,
        }
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if finite and rng.random() < 0.3:
            params["stopping_threshold"] = rng.choice(finite)
        if finite and rng.random() < 0.3:
            params["divergence_threshold"] = rng.choice(finite)
        on_train = rng.random() < 0.5
        cases.append({"id": f"generated-{i}", "source": "generated", "values": values,
                      "params": params, "check_on_train_epoch_end": on_train,
                      "standin": lightning_standin(values, on_train, **params)})  # fmt: skip
    write(
        "lightning_early_stopping.json",
        {"framework": f"lightning {lightning.__version__}", "dtype": "float32"},
        cases,
    )


# ---------------------------------------------------------------------------- transformers


def hf_run(values, patience, threshold, greater_is_better):
    from transformers import EarlyStoppingCallback, Trainer, TrainerControl, TrainerState
    from transformers.trainer_utils import SaveStrategy

    args = types.SimpleNamespace(metric_for_best_model="m", greater_is_better=greater_is_better,
                                 save_strategy=SaveStrategy.EPOCH)  # fmt: skip
    state, control = TrainerState(), TrainerControl()
    trainer = types.SimpleNamespace(args=args, state=state)
    callback = EarlyStoppingCallback(patience, threshold)
    stopped, best_epoch = None, None
    for epoch, v in enumerate(values):
        if v is None:
            continue
        state.global_step = epoch + 1
        metrics = {"eval_m": v}
        callback.on_evaluate(args, state, control, metrics)
        if Trainer._determine_best_metric(trainer, metrics, None):
            best_epoch = epoch
        if control.should_training_stop:
            stopped = epoch
            break
    return {"stopped_epoch": stopped, "best_epoch": best_epoch}


def hf_table(rng: random.Random) -> None:
    import transformers

    cases = []
    traps = [
        ("threshold-vs-moving-best", [1.0, 0.95, 0.92, 0.85], 2, 0.1, False),
        ("nan-first", [math.nan, 1.0, 1.0, 1.0], 2, 0.0, False),
        ("ties-are-not-improvements", [0.5, 0.5, 0.5], 2, 0.0, True),
        ("patience-0-stops-at-first", [1.0, 0.5], 0, 0.0, False),
    ]
    for name, values, patience, threshold, gib in traps:
        cases.append({"id": name, "source": "issue 12", "values": values,
                      "params": {"early_stopping_patience": patience,
                                 "early_stopping_threshold": threshold, "greater_is_better": gib},
                      "real": hf_run(values, patience, threshold, gib)})  # fmt: skip
    for i in range(N_GENERATED):
        values = curve(rng)
        patience = rng.randint(0, 5)
        threshold = rng.choice([0.0, 0.0, 1e-4, 0.01, 0.1, 1.0])
        gib = rng.random() < 0.5
        cases.append({"id": f"generated-{i}", "source": "generated", "values": values,
                      "params": {"early_stopping_patience": patience,
                                 "early_stopping_threshold": threshold, "greater_is_better": gib},
                      "real": hf_run(values, patience, threshold, gib)})  # fmt: skip
    write(
        "hf_early_stopping.json",
        {"framework": f"transformers {transformers.__version__}", "era": "4.47+"},
        cases,
    )


# ---------------------------------------------------------------------------- Ultralytics


def ultralytics_stopper(wheel: Path):
    """The ``EarlyStopping`` class of a wheel's ``ultralytics/utils/torch_utils.py``."""
    with zipfile.ZipFile(wheel) as z:
        source = z.read("ultralytics/utils/torch_utils.py").decode()
    tree = ast.parse(source)
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "EarlyStopping"]
    namespace = {"LOGGER": types.SimpleNamespace(info=lambda *a, **k: None),
                 "colorstr": lambda *a: ""}  # fmt: skip
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(wheel), "exec"), namespace)
    return namespace["EarlyStopping"]


def ultralytics_table(rng: random.Random, wheels: Path) -> None:
    eras = {"ties": "ultralytics-8.3.0-py3-none-any.whl",
            "strict": "ultralytics-8.4.190-py3-none-any.whl"}  # fmt: skip
    stoppers = {era: ultralytics_stopper(wheels / name) for era, name in eras.items()}
    cases = []
    for i in range(N_GENERATED):
        values = curve(rng, positive=rng.random() < 0.8)
        if rng.random() < 0.3:
            values = [0.0] * rng.randint(1, 4) + values
        patience = rng.choice([0, 1, 2, 3, 5, 100])
        for era, cls in stoppers.items():
            stopper = cls(patience=patience)
            stopped, best = None, None
            for index, v in enumerate(values):
                stop = stopper(index + 1, v)
                if v is not None and stopper.best_epoch == index + 1:
                    best = index
                if stop:
                    stopped = index
                    break
            cases.append({"id": f"generated-{i}-{era}", "source": eras[era], "era": era,
                          "values": values, "params": {"patience": patience},
                          "real": {"stopped_epoch": stopped, "best_epoch": best}})  # fmt: skip
    write(
        "ultralytics_early_stopping.json",
        {"framework": "ultralytics EarlyStopping", "wheels": eras},
        cases,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ultralytics-wheels", type=Path, help="folder with the two wheels")
    parser.add_argument("--only", nargs="*", default=["torch", "lightning", "hf", "ultralytics"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    if "torch" in args.only:
        torch_table(random.Random(12))
    if "lightning" in args.only:
        lightning_table(random.Random(13))
    if "hf" in args.only:
        hf_table(random.Random(14))
    if "ultralytics" in args.only and args.ultralytics_wheels:
        ultralytics_table(random.Random(15), args.ultralytics_wheels)


if __name__ == "__main__":
    main()
