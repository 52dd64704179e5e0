"""replay.recording.run_writer.histogram_summary: the TensorBoard histograms a run writes
are TensorBoard's own ``histogram_pb`` summaries, byte for byte, computed faster."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorboard.plugins.histogram.summary_v2 import histogram_pb

from replay.recording.run_writer import histogram_summary

RNG = np.random.default_rng(7)


@pytest.mark.parametrize(
    "values",
    [
        RNG.normal(size=(784, 512)).astype("float32"),  # a kernel
        RNG.normal(scale=1e-3, size=512).astype("float32"),  # a bias
        np.zeros(512, "float32"),  # a fresh bias: constant
        np.array([], "float32"),
        np.array([1.0, np.nan, 2.0], "float32"),
        np.array([-np.inf, 0.0, 1.0]),
        np.array([0.0, 1.0, 2.0, 3.0]),  # values on bucket edges
        np.array([1e-30, 2e-30], "float32"),
        np.arange(100, dtype="int64").reshape(10, 10),
        RNG.uniform(size=(3, 3, 32, 64)).astype("float16"),
    ],
    ids=["kernel", "bias", "zeros", "empty", "nan", "inf", "edges", "tiny", "ints", "float16"],
)
def test_equal_to_tensorboards_histogram_pb(values):
    assert (
        histogram_summary("dense_1/kernel/histogram", values).SerializeToString()
        == histogram_pb("dense_1/kernel/histogram", values).SerializeToString()
    )


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=2, max_side=40),
                  elements=st.floats(-1e6, 1e6, width=32)))  # fmt: skip
def test_equal_to_histogram_pb_on_any_finite_array(values):
    assert (
        histogram_summary("w", values).SerializeToString()
        == histogram_pb("w", values).SerializeToString()
    )
