"""Tests of the TensorBoard reader (analysis.reading.tb via analysis.reading.logs), without
TensorFlow.

Event files are built with our own TFRecord writer (``tests/tbevents.py``) except
in the slow test, which runs a real tiny Keras fit with TensorBoard + CSVLogger.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tbevents import file_version_event, frame_record, scalar_event

from analysis.errors import BadLog, LogNotFound, ReplayError
from analysis.formats import load_logs, load_run
from analysis.reading.logs import load_csv, load_tensorboard
from analysis.reading.tb import crc32c, masked_crc32c

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent


def write_events(path: Path, events: list[bytes]) -> Path:
    """Write an event file: the file_version record, then ``events``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame_record(e) for e in [file_version_event(), *events]))
    return path


def epoch_events(
    tag_values: dict[str, list[float]], wall: float = 100.0, as_tensor: bool = True, first: int = 0
) -> list[bytes]:
    """One scalar event per (tag, epoch), epoch-major like Keras writes them."""
    n = max(len(v) for v in tag_values.values())
    out = []
    for i in range(n):
        for tag, vals in tag_values.items():
            if i < len(vals):
                out.append(scalar_event(tag, vals[i], first + i, wall + i, as_tensor=as_tensor))
    return out


def keras_logdir(root: Path, n: int = 5) -> Path:
    """A Keras-like logdir: train (loss, accuracy, learning_rate, batch noise), validation."""
    loss = [1.0 / (e + 1) for e in range(n)]
    acc = [e / n for e in range(n)]
    train = epoch_events(
        {
            "epoch_loss": loss,
            "epoch_accuracy": acc,
            "epoch_learning_rate": [0.01] * n,
            "batch_loss": [9.0] * n,
        }
    )
    val = epoch_events(
        {"epoch_loss": [v + 0.5 for v in loss], "evaluation_loss_vs_iterations": [7.0] * n}
    )
    write_events(root / "train" / "events.out.tfevents.1.host.1.0.v2", train)
    write_events(root / "validation" / "events.out.tfevents.1.host.1.1.v2", val)
    return root


def f32(x: float) -> float:
    return float(np.float32(x))


# --------------------------------------------------------------------------- framing


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert masked_crc32c(b"") == 0xA282EAD8


def test_our_framing_matches_a_real_keras_file():
    real = DATA / "keras_fit/tb/validation"
    raw = next(real.iterdir()).read_bytes()
    (length,) = struct.unpack_from("<Q", raw)
    assert raw[8:12] == struct.pack("<I", masked_crc32c(raw[:8]))
    assert raw[12 + length : 16 + length] == struct.pack("<I", masked_crc32c(raw[12 : 12 + length]))
    assert frame_record(raw[12 : 12 + length]) == raw[: 16 + length]


def test_keras3_scalar_events_are_built_byte_for_byte():
    from tensorboard.compat.proto import event_pb2

    raw = next((DATA / "keras_fit/tb/train").iterdir()).read_bytes()
    built_events = 0
    for off in offsets_of(raw):
        data = raw[off + 12 : off + 12 + struct.unpack_from("<Q", raw, off)[0]]
        ev = event_pb2.Event.FromString(data)
        if ev.summary.value and ev.summary.value[0].tag.startswith("epoch_"):
            (value,) = struct.unpack("<f", ev.summary.value[0].tensor.tensor_content)
            built = scalar_event(ev.summary.value[0].tag, value, ev.step, ev.wall_time, keras3=True)
            assert built == data
            built_events += 1
    assert built_events == 9  # 3 epochs x (loss, accuracy, learning_rate)


def test_the_reader_stages(tmp_path):
    """records -> events -> points, each a generator; damage raises DamagedFile."""
    from analysis.reading import tb

    f = write_events(
        tmp_path / "events.out.tfevents.1",
        [
            scalar_event("epoch_loss", 0.5, 0, 1.0),
            scalar_event("batch_loss", 9.0, 0),
            scalar_event("loss", 0.25, 1, 2.0, as_tensor=False),
        ],
    )
    starts = offsets(f)
    records = list(tb.read_records(f))
    assert [offset for offset, _ in records] == starts
    assert list(tb.scalar_points(tb.parse_events(records))) == [
        ("epoch_loss", 0, 1.0, 0.5),
        ("loss", 1, 2.0, 0.25),
    ]
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(tb.DamagedFile, match=rf"^truncated record at byte {starts[-1]}$"):
        list(tb.read_records(f))
    with pytest.raises(tb.DamagedFile, match=rf"^record at byte {starts[0]} is not a TensorB"):
        list(tb.parse_events([(starts[0], b"\xff")]))


# --------------------------------------------------------------------------- reading


def test_keras_layout_mapping(tmp_path):
    run = load_tensorboard(keras_logdir(tmp_path / "tb", n=5))
    assert run.format == "tensorboard" and run.name == "tb" and run.warnings == []
    assert list(run.metrics.columns) == ["accuracy", "learning_rate", "loss", "val_loss"]
    assert run.metrics.index.name == "epoch" and run.n_epochs == 5
    assert run.values("loss") == [f32(1.0 / (e + 1)) for e in range(5)]
    assert run.values("val_loss") == [f32(1.0 / (e + 1) + 0.5) for e in range(5)]
    assert run.values("learning_rate") == [f32(0.01)] * 5
    assert not run.not_logged.any().any()


def test_more_than_ten_points_all_kept(tmp_path):
    n = 25
    write_events(
        tmp_path / "train/events.out.tfevents.1",
        epoch_events({"epoch_loss": [float(e) for e in range(n)]}),
    )
    write_events(
        tmp_path / "validation/events.out.tfevents.1",
        epoch_events({"epoch_loss": [float(-e) for e in range(n)]}),
    )
    write_events(
        tmp_path / "test/events.out.tfevents.1",
        epoch_events({"epoch_accuracy": [e / 100 for e in range(n)]}),
    )
    run = load_run(tmp_path)
    assert run.n_epochs == n
    assert run.values("loss") == [float(e) for e in range(n)]
    assert run.values("val_loss") == [float(-e) for e in range(n)]
    assert run.values("test_accuracy") == [f32(e / 100) for e in range(n)]


@pytest.mark.parametrize("form", ["simple_value", "tensor_content", "double"])
def test_value_forms(tmp_path, form):
    from tensorboard.compat.proto import event_pb2

    events = []
    for e in range(3):
        ev = event_pb2.Event(wall_time=1.0, step=e)
        v = ev.summary.value.add(tag="epoch_loss")
        if form == "simple_value":
            v.simple_value = e + 0.5
        elif form == "tensor_content":
            v.tensor.dtype = 1
            v.tensor.tensor_content = np.float32(e + 0.5).tobytes()
        else:
            v.tensor.dtype = 2
            v.tensor.double_val.append(e + 0.5)
        events.append(ev.SerializeToString())
    write_events(tmp_path / "train/events.out.tfevents.1", events)
    assert load_tensorboard(tmp_path).values("loss") == [0.5, 1.5, 2.5]


@pytest.mark.parametrize(
    "dtype,field,payload,expected",
    [
        (19, "half_val", [0x3C00], 1.0),  # float16 1.0
        (14, "half_val", [0x3F80], 1.0),  # bfloat16 1.0
        (9, "int64_val", [7], 7.0),
        (3, "int_val", [-3], -3.0),
        (10, "bool_val", [True], 1.0),
        (14, "tensor_content", b"\x80\x3f", 1.0),  # bfloat16 bytes
        (1, "tensor_content", b"\x00\x00\x80", None),  # 3 bytes for a float32
        (2, "tensor_content", np.float64(2.5).tobytes() * 2, None),  # two elements
        (7, "string_val", [b"x"], None),  # DT_STRING
        (1, "float_val", [], None),  # no value at all
    ],
)
def test_tensor_dtypes(tmp_path, dtype, field, payload, expected):
    from tensorboard.compat.proto import event_pb2

    ev = event_pb2.Event(step=0)
    v = ev.summary.value.add(tag="epoch_x")
    v.tensor.dtype = dtype
    if field == "tensor_content":
        v.tensor.tensor_content = payload
    else:
        getattr(v.tensor, field).extend(payload)
    write_events(
        tmp_path / "train/events.out.tfevents.1",
        [ev.SerializeToString(), *epoch_events({"epoch_loss": [1.0]})],
    )
    run = load_tensorboard(tmp_path)
    if expected is None:
        assert not run.has("x")
        assert run.warnings[0].endswith(": tag 'epoch_x' is not a numeric scalar; ignored it")
    else:
        assert run.values("x") == [expected] and run.warnings == []


def test_non_scalar_epoch_tag_ignored_with_warning(tmp_path):
    from tensorboard.compat.proto import event_pb2

    ev = event_pb2.Event(step=0)
    v = ev.summary.value.add(tag="epoch_weights")
    v.tensor.dtype = 1
    v.tensor.tensor_shape.dim.add(size=3)
    v.tensor.float_val.extend([1, 2, 3])
    f = write_events(
        tmp_path / "train/events.out.tfevents.1",
        [ev.SerializeToString(), *epoch_events({"epoch_loss": [1.0]})],
    )
    run = load_tensorboard(tmp_path)
    assert list(run.metrics.columns) == ["loss"]
    assert run.warnings == [f"{f}: tag 'epoch_weights' is not a numeric scalar; ignored it"]


def test_learning_rate_prefers_train(tmp_path):
    # (A change between steps 0 and 1 would be read as logged after a cut: see
    # test_lr_alignment.py; here the rate changes later, read as written.)
    write_events(
        tmp_path / "train/events.out.tfevents.1",
        epoch_events({"epoch_learning_rate": [0.5, 0.5, 0.25], "epoch_loss": [1, 2, 3]}),
    )
    write_events(
        tmp_path / "validation/events.out.tfevents.1",
        epoch_events({"epoch_learning_rate": [9.0, 9.0, 9.0], "epoch_loss": [3, 4, 5]}),
    )
    run = load_tensorboard(tmp_path)
    assert list(run.metrics.columns) == ["learning_rate", "loss", "val_loss"]
    assert run.values("learning_rate") == [0.5, 0.5, 0.25]


def test_several_files_merge_later_wall_time_wins(tmp_path):
    # First fit: epochs 0-3; resumed fit (later wall time) re-logs 2-3 and adds 4-5.
    write_events(
        tmp_path / "train/events.out.tfevents.2.b",
        epoch_events({"epoch_loss": [20.0, 30.0, 40.0, 50.0]}, wall=500, first=2),
    )
    write_events(
        tmp_path / "train/events.out.tfevents.1.a",
        epoch_events({"epoch_loss": [0.0, 1.0, 2.0, 3.0]}, wall=100),
    )
    run = load_tensorboard(tmp_path)
    assert run.values("loss") == [0.0, 1.0, 20.0, 30.0, 40.0, 50.0]
    assert run.warnings == [
        f"{tmp_path / 'train/events.out.tfevents.2.b'}: starts at epoch 2 after "
        "train/events.out.tfevents.1.a reached epoch 3 (a fit resumed from epoch 2); its "
        "values replace epoch 2 and later"
    ]


def test_gaps_and_late_start(tmp_path):
    write_events(
        tmp_path / "validation/events.out.tfevents.1",
        epoch_events({"epoch_loss": [1.0, 2.0]}, first=3),
    )
    run = load_tensorboard(tmp_path)
    assert run.values("val_loss") == [None, None, None, 1.0, 2.0]
    assert run.warnings == [f"{tmp_path}: epochs 0-2 missing; marked their cells not logged"]


def test_single_event_file_and_run_dir_layout(tmp_path):
    logdir = keras_logdir(tmp_path / "myrun" / "tensorboard")
    val_file = next((logdir / "validation").iterdir())
    run = load_run(val_file)
    assert run.format == "tensorboard" and run.name == "tensorboard"
    assert list(run.metrics.columns) == ["val_loss"]
    run = load_run(tmp_path / "myrun")  # a run dir with only tensorboard/
    assert (run.format, run.name, run.n_epochs) == ("tensorboard", "myrun", 5)


def test_events_directly_in_logdir_count_as_train(tmp_path):
    write_events(tmp_path / "events.out.tfevents.1", epoch_events({"epoch_loss": [1.0]}))
    assert list(load_run(tmp_path).metrics.columns) == ["loss"]


def test_unknown_subfolder_warned(tmp_path):
    keras_logdir(tmp_path)
    write_events(tmp_path / "plugins_x/events.out.tfevents.1", epoch_events({"epoch_a": [1.0]}))
    run = load_tensorboard(tmp_path)
    assert run.warnings == [
        f"{tmp_path / 'plugins_x'}: event files in a folder Keras does not write (expected "
        "train/, validation/, test/); ignored them"
    ]


# --------------------------------------------------------------------------- fits and trainings


def scalars(
    path: Path, tag_values: dict[str, list[float]], first: int = 0, wall: float = 100.0
) -> Path:
    return write_events(path, epoch_events(tag_values, wall=wall, first=first))


def test_two_fits_in_keras3_folders_are_two_trainings(tmp_path):
    scalars(tmp_path / "train/events.out.tfevents.1.h.1.0.v2", {"epoch_loss": [1.0, 0.9, 0.8]})
    scalars(tmp_path / "validation/events.out.tfevents.1.h.1.1.v2", {"epoch_loss": [1.5, 1.4, 1.3]})
    scalars(tmp_path / "train/events.out.tfevents.2.h.1.2.v2", {"epoch_loss": [2.0, 1.9]}, wall=500)
    scalars(
        tmp_path / "validation/events.out.tfevents.2.h.1.3.v2", {"epoch_loss": [2.5, 2.4]}, wall=500
    )
    first, second = load_logs(tmp_path)
    assert (first.name, second.name) == (f"{tmp_path.name}#1", f"{tmp_path.name}#2")
    assert first.values("val_loss") == [1.5, f32(1.4), f32(1.3)]
    assert second.values("loss") == [2.0, f32(1.9)]
    assert second.values("val_loss") == [2.5, f32(2.4)]
    assert second.warnings == [
        f"{tmp_path}: holds 2 trainings (a new one starts with each event file that goes back "
        "to epoch 0: train/events.out.tfevents.2.h.1.2.v2); this is training #2, "
        "train/events.out.tfevents.2.h.1.2.v2, validation/events.out.tfevents.2.h.1.3.v2"
    ]
    with pytest.raises(BadLog, match=r": holds 2 trainings; name one as .*#1 \.\.\. .*#2$"):
        load_tensorboard(tmp_path)


def test_validation_file_joins_its_fit_by_wall_time(tmp_path):
    """The first fit had no validation data: one validation file for two fits."""
    scalars(tmp_path / "train/events.out.tfevents.1", {"epoch_loss": [1.0, 0.9]})
    scalars(tmp_path / "train/events.out.tfevents.2", {"epoch_loss": [2.0, 1.9]}, wall=500)
    scalars(tmp_path / "validation/events.out.tfevents.2", {"epoch_loss": [2.5, 2.4]}, wall=500)
    first, second = load_logs(tmp_path)
    assert list(first.metrics.columns) == ["loss"]
    assert second.values("val_loss") == [2.5, f32(2.4)]


def test_resumed_fit_replaces_every_column_from_its_epoch(tmp_path):
    scalars(tmp_path / "train/events.out.tfevents.1", {"epoch_loss": [1.0, 0.9, 0.8, 0.7]})
    scalars(tmp_path / "validation/events.out.tfevents.1", {"epoch_loss": [1.5, 1.4, 1.3, 1.2]})
    scalars(tmp_path / "train/events.out.tfevents.2", {"epoch_loss": [0.5]}, first=2, wall=500)
    (run,) = load_logs(tmp_path)  # the resumed fit had no validation: epoch 3 is gone too
    assert run.values("loss") == [1.0, f32(0.9), 0.5]
    assert run.values("val_loss") == [1.5, f32(1.4), None]
    assert run.warnings[0] == (
        f"{tmp_path / 'train/events.out.tfevents.2'}: starts at epoch 2 after "
        "train/events.out.tfevents.1 reached epoch 3 (a fit resumed from epoch 2); its values "
        "replace epoch 2 and later"
    )


def test_tf1_flat_folder_bare_tags_batch_tags_and_histograms(tmp_path):
    """Keras 2 with TF1 (tags without epoch_, simple_value); per-batch tags and histograms
    are ignored without a word."""
    from tensorboard.compat.proto import event_pb2

    hist = event_pb2.Event(step=0)
    hist.summary.value.add(tag="dense_1/kernel_0").histo.num = 3.0
    write_events(
        tmp_path / "events.out.tfevents.1",
        [
            hist.SerializeToString(),
            scalar_event("batch_loss", 9.0, 0, as_tensor=False),
            *epoch_events(
                {"loss": [1.0, 0.5], "acc": [0.5, 0.75], "val_loss": [2.0, 1.5]}, as_tensor=False
            ),
        ],
    )
    (run,) = load_logs(tmp_path)
    assert list(run.metrics.columns) == ["acc", "loss", "val_loss"] and run.warnings == []
    assert run.values("accuracy") == [0.5, 0.75]
    assert not math.isnan(run.metrics["loss"].iloc[0])


def test_tf_keras_1_flat_folder_epoch_tags(tmp_path):
    """tf.keras in TF 1.x (callbacks_v1): one flat folder, epoch_loss and epoch_val_loss."""
    write_events(
        tmp_path / "events.out.tfevents.1",
        epoch_events(
            {
                "epoch_loss": [1.0, 0.5],
                "epoch_val_loss": [2.0, 1.5],
                "epoch_acc": [0.5, 0.75],
                "batch_loss": [3.0, 3.0],
            },
            as_tensor=False,
        ),
    )
    (run,) = load_logs(tmp_path)
    assert list(run.metrics.columns) == ["acc", "loss", "val_loss"]
    assert run.values("val_loss") == [2.0, 1.5]


# --------------------------------------------------------------------------- damage


def offsets(path: Path) -> list[int]:
    """Start offsets of the records of an event file."""
    return offsets_of(path.read_bytes())


def offsets_of(raw: bytes) -> list[int]:
    """Start offsets of the records of event-file bytes."""
    out, off = [], 0
    while off < len(raw):
        out.append(off)
        off += 16 + struct.unpack_from("<Q", raw, off)[0]
    return out


@pytest.mark.parametrize("cut", ["mid-data", "mid-header", "mid-footer"])
def test_truncated_file_keeps_prefix(tmp_path, cut):
    f = write_events(
        tmp_path / "train/events.out.tfevents.1",
        epoch_events({"epoch_loss": [float(e) for e in range(10)]}),
    )
    start = offsets(f)[7]  # record 0 is file_version, so this is epoch 6
    raw = f.read_bytes()
    at = {"mid-data": start + 20, "mid-header": start + 5, "mid-footer": offsets(f)[8] - 2}[cut]
    f.write_bytes(raw[:at])
    run = load_tensorboard(tmp_path)
    assert run.values("loss") == [float(e) for e in range(6)]
    what = "truncated record header" if cut == "mid-header" else "truncated record"
    assert run.warnings == [
        f"{f}: damaged ({what} at byte {start}); kept the data before it (last epoch read 5), "
        "anything after it in this file is lost"
    ]


@pytest.mark.parametrize(
    "where,what",
    [
        (14, "record data fails its CRC"),  # a byte of the data
        (3, "record length fails its CRC"),  # a byte of the length
        (9, "record length fails its CRC"),  # a byte of the length's CRC
    ],
)
def test_crc_flipped_byte_keeps_prefix(tmp_path, where, what):
    f = write_events(
        tmp_path / "train/events.out.tfevents.1",
        epoch_events({"epoch_loss": [float(e) for e in range(10)]}),
    )
    start = offsets(f)[5]  # epoch 4
    raw = bytearray(f.read_bytes())
    raw[start + where] ^= 0x01
    f.write_bytes(bytes(raw))
    run = load_tensorboard(tmp_path)
    assert run.values("loss") == [0.0, 1.0, 2.0, 3.0]
    assert run.warnings == [
        f"{f}: damaged ({what} at byte {start}); kept the data before it (last epoch read 3), "
        "anything after it in this file is lost"
    ]


def test_damage_in_one_folder_keeps_the_others(tmp_path):
    logdir = keras_logdir(tmp_path, n=6)
    f = next((logdir / "validation").iterdir())
    f.write_bytes(f.read_bytes()[: offsets(f)[5] + 13])  # inside epoch 2
    run = load_tensorboard(logdir)
    assert run.n_epochs == 6
    assert run.not_logged["val_loss"].tolist() == [False, False, True, True, True, True]
    assert run.warnings[0].startswith(f"{f}: damaged (truncated record at byte ")
    assert "(last epoch read 1)" in run.warnings[0]


def text_event(tag: str, size: int) -> bytes:
    """A serialized Event holding a string tensor of ``size`` bytes (no scalar of ours)."""
    from tensorboard.compat.proto import event_pb2

    ev = event_pb2.Event(step=0)
    v = ev.summary.value.add(tag=tag)
    v.tensor.dtype = 7  # DT_STRING
    v.tensor.string_val.append(b"x" * size)
    return ev.SerializeToString()


@pytest.mark.parametrize("size", [5_000, 3_000_000])  # a large record; one beyond a chunk
def test_every_record_crc_is_checked_even_without_a_scalar(tmp_path, size):
    """A damaged record is reported whatever it holds (once, large records without a
    scalar were skipped unchecked) and records larger than the read chunk are read whole."""
    loss = {"epoch_loss": [float(e) for e in range(5)]}
    events = epoch_events(loss)
    f = write_events(
        tmp_path / "train/events.out.tfevents.1",
        [*events[:3], text_event("model_config", size), *events[3:]],
    )
    assert load_tensorboard(tmp_path).values("loss") == [float(e) for e in range(5)]
    start = offsets(f)[4]  # record 0 is file_version, 1-3 are epochs 0-2
    raw = bytearray(f.read_bytes())
    raw[start + 12 + size // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    run = load_tensorboard(tmp_path)
    assert run.values("loss") == [0.0, 1.0, 2.0]
    assert run.warnings == [
        f"{f}: damaged (record data fails its CRC at byte {start}); kept the data before it "
        "(last epoch read 2), anything after it in this file is lost"
    ]


# --------------------------------------------------------------------------- bad input


def test_nothing_readable_is_badlog(tmp_path):
    f = tmp_path / "train/events.out.tfevents.1"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"\x00garbage that is not a tfrecord at all")
    with pytest.raises(BadLog) as info:
        load_run(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: 1 event file(s) but no readable epoch_* scalar (nor the loss of a TF1-era "
        f"flat folder); {f}: damaged (record "
        "length fails its CRC at byte 0); kept the data before it (no epoch read before it), "
        "anything after it in this file is lost; a Keras TensorBoard callback writes "
        "epoch_loss etc. to train/ and validation/"
    )


def test_only_batch_scalars_is_badlog(tmp_path):
    write_events(tmp_path / "train/events.out.tfevents.1", epoch_events({"batch_loss": [1.0]}))
    with pytest.raises(
        BadLog,
        match=r": 1 event file\(s\) but no readable epoch_\* scalar \(nor "
        r"the loss of a TF1-era flat folder\); a "
        r"Keras TensorBoard callback writes epoch_loss etc\. to train/ and "
        r"validation/$",
    ):
        load_tensorboard(tmp_path)


@pytest.mark.parametrize(
    ("tags", "who", "log"),
    [
        # ultralytics/utils/callbacks/tensorboard.py logs trainer metrics under their names
        (["metrics/mAP50(B)", "train/box_loss", "lr/pg0"], "Ultralytics", "its results.csv"),
        # lightning TensorBoardLogger: self.log names, hp_metric, LearningRateMonitor's lr-<opt>
        (["epoch", "hp_metric", "lr-Adam", "val_loss"], "PyTorch Lightning's TensorBoardLogger",
         "the metrics.csv of its CSVLogger"),
        # transformers TensorBoardCallback: train/ and eval/ prefixes
        (["eval/loss", "train/loss", "train/learning_rate"], "a Hugging Face Trainer",
         "its trainer_state.json"),
    ],
)  # fmt: skip
def test_pytorch_tools_tensorboard_logs_are_refused_with_the_log_to_read(tmp_path, tags, who, log):
    """Their tags are not Keras's epoch scalars: refused, naming the log of theirs that is read."""
    write_events(tmp_path / "events.out.tfevents.1", epoch_events({t: [1.0, 0.5] for t in tags}))
    with pytest.raises(BadLog) as info:
        load_tensorboard(tmp_path)
    shown = ", ".join(sorted(tags))
    assert str(info.value).endswith(
        f"epoch_loss etc. to train/ and validation/; its scalar tags ({shown}) are {who}'s, "
        f"not Keras's epoch scalars: pass {log} instead"
    )


def test_empty_event_file_is_badlog(tmp_path):
    f = tmp_path / "train/events.out.tfevents.1"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    with pytest.raises(BadLog, match="no readable epoch_"):
        load_run(tmp_path)


def test_huge_step_is_badlog(tmp_path):
    write_events(
        tmp_path / "train/events.out.tfevents.1",
        [scalar_event("epoch_loss", 1.0, 0), scalar_event("epoch_loss", 1.0, 10**12)],
    )
    with pytest.raises(
        BadLog,
        match=r"epoch 1000000000000 would leave 999999999999 epochs "
        r"missing among 2 logged",
    ):
        load_tensorboard(tmp_path)


def test_no_event_files(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(LogNotFound) as info:
        load_tensorboard(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: no TensorBoard event files (events.out.tfevents.*) in it or in its "
        "train/, validation/, test/ folders; pass the log_dir given to "
        "keras.callbacks.TensorBoard"
    )
    with pytest.raises(LogNotFound, match="no such file or directory"):
        load_tensorboard(tmp_path / "missing")


def test_nested_runs_hint(tmp_path):
    keras_logdir(tmp_path / "logs" / "run1")
    keras_logdir(tmp_path / "logs" / "run2")
    with pytest.raises(
        LogNotFound,
        match=r"\(its subfolders run1, run2 hold TensorBoard logs: "
        r"pass one of them\)",
    ):
        load_run(tmp_path / "logs")


# --------------------------------------------------------------------------- real Keras data


def test_stored_keras_fit_matches_its_csvlogger():
    """tests/data/keras_fit was written by a real Keras 3 fit (TensorBoard + CSVLogger)."""
    tb = load_tensorboard(DATA / "keras_fit/tb")
    csv = load_csv(DATA / "keras_fit/log.csv")
    assert tb.warnings == [] and csv.warnings == []
    assert set(csv.metrics.columns) <= set(tb.metrics.columns)
    for col in csv.metrics.columns:
        assert tb.values(col) == [f32(v) for v in csv.values(col)], col


def test_reading_does_not_import_tensorflow(tmp_path):
    from tensorboard.compat.proto import event_pb2

    keras_logdir(tmp_path / "tb")
    ev = event_pb2.Event(step=0)  # an int64 scalar: decoded by tensorboard's make_ndarray
    v = ev.summary.value.add(tag="epoch_loss")
    v.tensor.dtype = 9
    v.tensor.int64_val.append(7)
    write_events(tmp_path / "tb64/train/events.out.tfevents.1", [ev.SerializeToString()])
    code = (
        "import sys\n"
        "from analysis.formats import load_run\n"
        f"run = load_run({str(tmp_path / 'tb')!r})\n"
        f"run2 = load_run({str(DATA / 'keras_fit' / 'tb')!r})\n"
        "assert run.n_epochs == 5 and run2.n_epochs == 3\n"
        f"assert load_run({str(tmp_path / 'tb64')!r}).values('loss') == [7.0]\n"
        "assert 'tensorboard.util.tensor_util' in sys.modules\n"
        "bad = sorted(m for m in ('tensorflow', 'keras', 'replay') if m in sys.modules)\n"
        "print('IMPORTED', bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "IMPORTED []"


@pytest.fixture(scope="module")
def keras_fit(tmp_path_factory) -> Path:
    """Run a tiny Keras fit with TensorBoard and CSVLogger; return its directory."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("keras_fit")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(str(root / "tb")),
            keras.callbacks.CSVLogger(str(root / "log.csv")),
        ],
    )
    return root


@pytest.mark.slow
def test_real_keras_tensorboard_matches_csvlogger(keras_fit):
    tb = load_tensorboard(keras_fit / "tb")
    csv = load_csv(keras_fit / "log.csv")
    assert tb.warnings == [] and csv.warnings == []
    assert tb.n_epochs == csv.n_epochs == 3
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(csv.metrics.columns)
    assert set(csv.metrics.columns) <= set(tb.metrics.columns)
    for col in csv.metrics.columns:
        assert tb.values(col) == [f32(v) for v in csv.values(col)], col
    assert not tb.not_logged.any().any()


@pytest.mark.slow
def test_real_keras_file_truncated_and_flipped(keras_fit, tmp_path):
    logdir = tmp_path / "tb"
    shutil.copytree(keras_fit / "tb", logdir)
    (val,) = list((logdir / "validation").iterdir())
    epoch_records = []  # (offset, step) of the records that carry epoch_ scalars
    from tensorboard.compat.proto import event_pb2

    raw = val.read_bytes()
    for off in offsets(val):
        ev = event_pb2.Event.FromString(
            raw[off + 12 : off + 12 + struct.unpack_from("<Q", raw, off)[0]]
        )
        if any(v.tag.startswith("epoch_") for v in ev.summary.value):
            epoch_records.append((off, ev.step))
    last_of_epoch_0 = max(off for off, step in epoch_records if step == 0)
    first_of_epoch_1 = min(off for off, step in epoch_records if step == 1)
    assert last_of_epoch_0 < first_of_epoch_1

    val.write_bytes(raw[: first_of_epoch_1 + 30])  # cut inside the first epoch-1 record
    run = load_tensorboard(logdir)
    assert run.not_logged["val_loss"].tolist() == [False, True, True]
    assert re.fullmatch(
        re.escape(f"{val}: damaged (truncated record at byte ")
        + r"\d+\); kept the data before it \(last epoch read 0\), anything "
        r"after it in this file is lost",
        run.warnings[0],
    )

    flipped = bytearray(raw)
    flipped[first_of_epoch_1 + 20] ^= 0x40
    val.write_bytes(bytes(flipped))
    run = load_tensorboard(logdir)
    assert run.not_logged["val_loss"].tolist() == [False, True, True]
    assert "record data fails its CRC" in run.warnings[0]
    assert "(last epoch read 0)" in run.warnings[0]


# --------------------------------------------------------------------------- robustness smoke

SEED_EVENTS = next((DATA / "keras_fit/tb/train").iterdir()).read_bytes()


@settings(max_examples=200, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(SEED_EVENTS) - 1), st.integers(0, 7)), max_size=3),
    cut=st.integers(0, len(SEED_EVENTS)),
)
def test_any_damage_gives_a_runlog_or_a_replay_error(flips, cut):
    data = bytearray(SEED_EVENTS)
    for i, bit in flips:
        data[i] ^= 1 << bit
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "train" / "events.out.tfevents.1"
        f.parent.mkdir()
        f.write_bytes(bytes(data[:cut]))
        try:
            run = load_tensorboard(d)
        except ReplayError as e:
            assert "\n" not in str(e)
        else:
            assert run.n_epochs > 0
            if flips or cut < len(SEED_EVENTS):
                # Damage either leaves the data whole or is reported; never silent loss.
                full = load_tensorboard(DATA / "keras_fit/tb/train")
                lost = run.not_logged.to_numpy().sum() + (full.n_epochs - run.n_epochs)
                assert run.warnings or lost == 0 or cut in _record_ends()


@cache
def _record_ends() -> frozenset[int]:
    """Offsets where a record of the seed file ends: a cut there is undetectable."""
    ends, off = set(), 0
    while off < len(SEED_EVENTS):
        off += 16 + struct.unpack_from("<Q", SEED_EVENTS, off)[0]
        ends.add(off)
    return frozenset(ends | {0})


FIT = st.fixed_dictionaries(
    {
        "folder": st.sampled_from(["", "train", "validation"]),
        "start": st.integers(0, 6),
        "n": st.integers(0, 5),
        "wall": st.sampled_from([0.0, 100.0, 200.0, 300.0]),
        "bare": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(fits=st.lists(FIT, min_size=1, max_size=5))
def test_any_set_of_fits_gives_runs_or_a_replay_error(fits):
    """Several event files per folder, in any order, starting anywhere: every training is a
    RunLog of contiguous epochs (or the whole log a one-line error), never a crash."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "tb"
        for i, fit in enumerate(fits):
            tag = "loss" if fit["bare"] and fit["folder"] == "" else "epoch_loss"
            values = [float(fit["start"] + k) for k in range(fit["n"])]
            events = (
                epoch_events(
                    {tag: values}, wall=fit["wall"], first=fit["start"], as_tensor=not fit["bare"]
                )
                if values
                else []
            )
            write_events(root / fit["folder"] / f"events.out.tfevents.{i}", events)
        try:
            runs = load_logs(root)
        except ReplayError as e:
            assert "\n" not in str(e)
            return
        assert runs and all(r.n_epochs > 0 for r in runs)
        assert len({r.name for r in runs}) == len(runs)
        for r in runs:
            assert list(r.metrics.index) == list(range(r.n_epochs))
            for column in r.metrics.columns:  # a value logged at epoch e is e (see above)
                for e, v in enumerate(r.values(column)):
                    assert v is None or v == e
