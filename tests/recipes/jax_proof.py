"""Run by tests/test_branch_own_model.py under ``KERAS_BACKEND=jax``: record the two runs
of the proof (``constant``, ``plateau`` with a live ReduceLROnPlateau) into ``OUT`` and
branch ``constant`` for that setting, in one process; the test compares the files."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(out: Path, epochs: int) -> int:
    import keras
    import own_recipe
    from click.testing import CliRunner

    from replay.commands.cli import cli
    from replay.keras import RecordCallback, fit

    assert keras.backend.backend() == "jax", keras.backend.backend()
    for name, live in (("constant", False), ("plateau", True)):
        keras.utils.set_random_seed(0)
        model = own_recipe.build_model()
        cbs = [keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)] if live else []
        recorder = RecordCallback(out / name, recipe=f"{HERE / 'own_recipe.py'}:recipe")
        fit(model, own_recipe.recipe(), epochs=epochs, verbose=0, callbacks=[*cbs, recorder])
    args = ["branch", str(out / "constant"), "--factor", "0.5", "--lr-patience", "1", "-y"]
    result = CliRunner().invoke(cli, args)
    print(result.output)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
