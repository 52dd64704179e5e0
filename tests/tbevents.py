"""Builders of TensorBoard event files without TensorFlow, for tests and benchmarks.

``from tbevents import frame_record, scalar_event, file_version_event``: pytest puts
``tests/`` on ``sys.path`` (see ``conftest.py``); ``benchmarks/bench_readers.py`` adds
it itself. The framing uses the reader's own checksum (:func:`analysis.reading.tb.masked_crc32c`),
so the writer and the reader of the format share the code that defines it.
"""

from __future__ import annotations

import struct

from analysis.reading.tb import masked_crc32c


def frame_record(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord (what the reader undoes)."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def scalar_event(
    tag: str,
    value: float,
    step: int,
    wall_time: float = 0.0,
    *,
    as_tensor: bool = True,
    keras3: bool = False,
) -> bytes:
    """Return a serialized ``Event`` holding one scalar, as ``tf.summary.scalar`` writes it.

    ``as_tensor=False`` writes the TF1 ``simple_value`` form instead; ``keras3=True``
    writes the tensor as Keras 3 and tf.keras 2 do (float32 bytes in ``tensor_content``,
    an empty ``tensor_shape``), byte for byte.
    """
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=wall_time, step=step)
    v = event.summary.value.add(tag=tag)
    if keras3:
        v.tensor.dtype = 1  # DT_FLOAT
        v.tensor.tensor_shape.SetInParent()
        v.tensor.tensor_content = struct.pack("<f", value)
        v.metadata.plugin_data.plugin_name = "scalars"
    elif as_tensor:
        v.metadata.plugin_data.plugin_name = "scalars"
        v.tensor.dtype = 1  # DT_FLOAT
        v.tensor.float_val.append(value)
    else:
        v.simple_value = value
    return event.SerializeToString()


def file_version_event(wall_time: float = 0.0) -> bytes:
    """Return the serialized first ``Event`` of every event file (``brain.Event:2``)."""
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString()
