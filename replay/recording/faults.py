"""Test-only fault hooks of ``replay record``: inert unless ``REPLAY_TEST_HOOK`` is set.

The fault-injection tests (``tests/test_faults.py``) stop a recording at named points
of its per-epoch commit sequence (see ``docs/run-directory.md`` and
:mod:`replay.mnist.record`) to prove that no committed epoch is ever lost::

    REPLAY_TEST_HOOK="POINT[@EPOCH]:ACTION[;POINT[@EPOCH]:ACTION...]"

POINT is one of :data:`HOOK_POINTS`: ``epoch_start`` (before the epoch's fit),
``in_fit`` (after its first training batch), ``after_fit`` (metrics known, nothing
written), ``after_checkpoint_tmp`` (temporary file fsynced, not renamed),
``after_checkpoint_rename``, ``after_metrics_row``, ``after_tensorboard``,
``after_manifest`` (epoch fully committed). EPOCH is a 0-based epoch (omitted: every
epoch), ACTION one of ``kill`` (SIGKILL this process: a kill -9 at that instant),
``interrupt`` (SIGINT this process: a Ctrl-C), ``fail`` (raise RuntimeError), ``enospc``
or ``eio`` (raise ``OSError`` with errno ENOSPC or EIO: a write that fails, as on a full
or failing disk) or ``pause`` (write "POINT@EPOCH PID" to the file named by
``REPLAY_TEST_HOOK_SIGNAL``, if set, then sleep until killed). Example:
``after_manifest@1:pause`` stops right after the second epoch is fully committed.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import time
from pathlib import Path

from analysis.errors import ReplayError

HOOK_POINTS = (
    "epoch_start",
    "in_fit",
    "after_fit",
    "after_checkpoint_tmp",
    "after_checkpoint_rename",
    "after_metrics_row",
    "after_tensorboard",
    "after_manifest",
)
HOOK_ACTIONS = ("kill", "interrupt", "fail", "enospc", "eio", "pause")


class BadConfig(ReplayError):
    """An option value that cannot be used (bad --reduce-lr-on-plateau, --limit, ...)."""


@dataclasses.dataclass(frozen=True)
class Hooks:
    """Parsed ``REPLAY_TEST_HOOK`` rules: (point, epoch or None, action)."""

    rules: tuple[tuple[str, int | None, str], ...] = ()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Hooks:
        """Parse ``REPLAY_TEST_HOOK``; raise :class:`BadConfig` on a
        malformed rule.

        >>> Hooks.from_env({"REPLAY_TEST_HOOK": "after_manifest@1:pause"}).rules
        (('after_manifest', 1, 'pause'),)
        """
        spec = (environ if environ is not None else os.environ).get("REPLAY_TEST_HOOK", "")
        rules = []
        for item in filter(None, (s.strip() for s in spec.split(";"))):
            where, _, action = item.rpartition(":")
            point, _, epoch = where.partition("@")
            if point not in HOOK_POINTS or action not in HOOK_ACTIONS:
                raise BadConfig(f"REPLAY_TEST_HOOK: bad rule {item!r} (POINT[@EPOCH]:ACTION)")
            try:
                rules.append((point, int(epoch) if epoch else None, action))
            except ValueError:
                raise BadConfig(f"REPLAY_TEST_HOOK: bad epoch in {item!r}") from None
        return cls(tuple(rules))

    def wants(self, point: str) -> bool:
        """Return whether any rule names `point`."""
        return any(p == point for p, _, _ in self.rules)

    def __call__(self, point: str, epoch: int) -> None:
        for p, e, action in self.rules:
            if p == point and (e is None or e == epoch):
                _hook_action(action, f"{point}@{epoch}")


def _hook_action(action: str, where: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "interrupt":
        signal.raise_signal(signal.SIGINT)
    elif action == "fail":
        raise RuntimeError(f"REPLAY_TEST_HOOK failure at {where}")
    elif action in ("enospc", "eio"):
        code = errno.ENOSPC if action == "enospc" else errno.EIO
        raise OSError(code, os.strerror(code), f"REPLAY_TEST_HOOK at {where}")
    else:  # pause
        target = os.environ.get("REPLAY_TEST_HOOK_SIGNAL")
        if target:
            tmp = f"{target}.tmp"
            Path(tmp).write_text(f"{where} {os.getpid()}\n")
            os.replace(tmp, target)
        while True:
            time.sleep(3600)
