"""A Keras History saved with pandas: written here by pandas itself (and by a real fit)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.errors import BadLog
from analysis.formats import detect, load_logs

HISTORY = {"loss": [0.9, 0.7, 0.6], "accuracy": [0.5, 0.6, 0.7], "val_loss": [1.0, 0.8, 0.85]}


@pytest.mark.parametrize("index", [True, False])
def test_pandas_history_is_read_epoch_by_epoch(tmp_path, index):
    path = tmp_path / "history.csv"
    pd.DataFrame(HISTORY).to_csv(path, index=index)
    (run,) = load_logs(path)
    assert run.format == "keras_history" and detect(path).name == "keras_history"
    assert list(run.metrics.columns) == ["loss", "accuracy", "val_loss"]
    assert {c: run.values(c) for c in HISTORY} == HISTORY
    how = "its first column (pandas's index)" if index else "row k as epoch k"
    assert run.warnings[0].startswith(
        f"{path}: no 'epoch' column but a 'loss' column: read as a Keras History saved "
        f"with pandas, taking {how}"
    )


def test_round_tripped_index_and_concatenated_histories(tmp_path):
    """``read_csv`` then ``to_csv`` names the index ``Unnamed: 0``; ``pd.concat`` of two
    histories repeats the index from 0: two trainings, not one spliced curve."""
    path = tmp_path / "h.csv"
    both = pd.concat([pd.DataFrame(HISTORY), pd.DataFrame(HISTORY).head(2)])
    both.to_csv(path)
    pd.read_csv(path).to_csv(path, index=False)
    assert path.read_text().startswith("Unnamed: 0,loss,")
    runs = load_logs(path)
    assert [r.name for r in runs] == ["h#1", "h#2"]
    assert runs[1].values("val_loss") == [1.0, 0.8]


def test_a_csv_with_neither_epoch_nor_loss_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"accuracy": [0.5]}).to_csv(path, index=False)
    with pytest.raises(BadLog, match=r"line 1 has no 'epoch' column: 'accuracy'; a Keras "
                       r"CSVLogger file starts with .* \(also read: .*a Keras History saved "
                       r"with pandas"):  # fmt: skip
        load_logs(path)


def test_a_bad_cell_is_reported_at_its_line(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("loss,val_loss\n0.9,1.0\n0.8,oops\n")
    with pytest.raises(BadLog, match=r"h\.csv: line 3, column 'val_loss': 'oops' is not a number"):
        load_logs(path)


@pytest.mark.slow
def test_a_real_keras_history(tmp_path):
    import numpy as np

    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    path = tmp_path / "history.csv"
    pd.DataFrame(history.history).to_csv(path)
    (run,) = load_logs(path)
    assert run.n_epochs == 3
    for name, values in history.history.items():
        assert run.values(name) == [float(v) for v in values]
