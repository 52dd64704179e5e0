"""What ``replay record`` trains and how: :class:`RecordConfig` (run.json's ``config``,
validated, and the command line that reproduces it), the ``--reduce-lr-on-plateau``
spelling (:func:`parse_plateau`, :func:`format_plateau`) and the default ``--out``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path
from typing import Any

from analysis.errors import BadManifest
from replay.mnist.data import N_TRAIN
from replay.recording.faults import BadConfig
from replay.recording.run_writer import METRICS, PLATEAU_DEFAULTS

__all__ = ["RecordConfig", "default_out", "format_plateau", "parse_plateau"]


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    """What is trained and how; stored in run.json as ``config``."""

    epochs: int = 30
    model: str = "mlp"
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    limit: int | None = None
    reduce_lr_on_plateau: dict[str, Any] | None = None

    def validate(self) -> None:
        """Raise :class:`BadConfig` on the first unusable value."""
        if self.epochs < 1:
            raise BadConfig(f"--epochs must be at least 1 but got {self.epochs}")
        if self.model not in ("mlp", "cnn"):
            raise BadConfig(f"--model must be mlp or cnn but got {self.model!r}")
        if self.batch_size < 1:
            raise BadConfig(f"--batch-size must be at least 1 but got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise BadConfig(f"--optimizer must be adam or sgd but got {self.optimizer!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise BadConfig(f"--learning-rate must be positive but got {self.learning_rate}")
        if not 0 <= self.seed < 2**32:
            raise BadConfig(f"--seed must be in 0..2**32-1 but got {self.seed}")
        if self.limit is not None and not 1 <= self.limit <= N_TRAIN:
            raise BadConfig(f"--limit must be in 1..{N_TRAIN} but got {self.limit}")

    def to_json(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> RecordConfig:
        """Rebuild a config stored in run.json; raise :class:`BadManifest` if malformed."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(obj, dict) or not names >= set(obj) or "epochs" not in obj:
            raise BadManifest(f"run.json config is malformed: {obj!r}")
        try:
            config = cls(**obj)
            config.validate()
            if config.reduce_lr_on_plateau is not None:
                parse_plateau(format_plateau(config.reduce_lr_on_plateau))
        except (TypeError, KeyError, BadConfig) as e:
            raise BadManifest(f"run.json config is malformed: {e}") from None
        return config

    def command(self, out: Path, data: str | None) -> list[str]:
        """Return the ``replay record`` command line that reproduces this run."""
        cmd = [
            "replay",
            "record",
            "--out",
            str(out),
            "--epochs",
            str(self.epochs),
            "--model",
            self.model,
            "--batch-size",
            str(self.batch_size),
            "--optimizer",
            self.optimizer,
            "--learning-rate",
            repr(self.learning_rate),
            "--seed",
            str(self.seed),
        ]
        if self.limit is not None:
            cmd += ["--limit", str(self.limit)]
        if self.reduce_lr_on_plateau is not None:
            cmd += ["--reduce-lr-on-plateau", format_plateau(self.reduce_lr_on_plateau)]
        if data is not None:
            cmd += ["--data", data]
        return cmd


def parse_plateau(spec: str) -> dict[str, Any]:
    """Parse ``"factor=0.5,patience=2"`` into full ReduceLROnPlateau params (defaults filled).

    Keys: monitor, factor, patience, mode, min_delta, cooldown, min_lr. Raises
    :class:`BadConfig` naming the offending key or value.

    >>> parse_plateau("factor=0.5,patience=2")["patience"]
    2
    """
    params = dict(PLATEAU_DEFAULTS)
    seen: set[str] = set()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise BadConfig(f"--reduce-lr-on-plateau: expected KEY=VALUE but got {item!r}")
        if key not in PLATEAU_DEFAULTS:
            known = ", ".join(PLATEAU_DEFAULTS)
            raise BadConfig(f"--reduce-lr-on-plateau: unknown key {key!r} (known: {known})")
        if key in seen:
            raise BadConfig(f"--reduce-lr-on-plateau: key {key!r} given twice")
        seen.add(key)
        params[key] = _plateau_value(key, value)
    if not seen:
        raise BadConfig("--reduce-lr-on-plateau: no settings given (e.g. factor=0.5,patience=2)")
    return params


def _plateau_value(key: str, value: str) -> Any:
    bad = f"--reduce-lr-on-plateau: {key} "
    if key == "monitor":
        if value not in METRICS:
            raise BadConfig(bad + f"must be one of {', '.join(METRICS)} but got {value!r}")
        return value
    if key == "mode":
        if value not in ("auto", "min", "max"):
            raise BadConfig(bad + f"must be auto, min or max but got {value!r}")
        return value
    if key in ("patience", "cooldown"):
        try:
            number = int(value)
        except ValueError:
            raise BadConfig(bad + f"must be an integer but got {value!r}") from None
        if number < 0:
            raise BadConfig(bad + f"cannot be negative but got {number}")
        return number
    try:
        real = float(value)
    except ValueError:
        raise BadConfig(bad + f"must be a number but got {value!r}") from None
    if not math.isfinite(real):
        raise BadConfig(bad + f"must be finite but got {value!r}")
    if key == "factor" and not 0 < real < 1:
        raise BadConfig(bad + f"must be in (0, 1) but got {real}")
    if real < 0:
        raise BadConfig(bad + f"cannot be negative but got {real}")
    return real


def format_plateau(params: dict[str, Any]) -> str:
    """Return the canonical ``key=value,...`` spelling of full plateau params."""
    return ",".join(f"{k}={params[k]}" for k in PLATEAU_DEFAULTS)


def default_out(model: str, now: datetime.datetime | None = None) -> Path:
    """Return ``runs/<model>-<UTC timestamp>``, e.g. ``runs/mlp-20250101T120000Z``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return Path("runs") / f"{model}-{now:%Y%m%dT%H%M%SZ}"
