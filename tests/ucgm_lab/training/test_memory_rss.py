"""The memory planner within 15 % of the measured peak RSS of real training steps on the CPU.

Each measurement runs in a fresh process (ucgm_lab.training.rss): the runtime is warmed up
and taken as the baseline, then the trainer builds a small TiT (4 blocks, width 256, 256
tokens, 8 images, AdamW, EMA, the enhanced target's EMA teacher) and runs two steps; the growth
of the peak resident set is compared with the planner's total. glibc hands freed blocks back
(``allocator="returning"``), as the planner counts live tensors.
"""

import sys

import pytest

from ucgm_lab.training.rss import RSSRun, measure_training_rss

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the peak resident set is read from /proc"
)

SMALL = dict(hidden_size=256, depth=4, num_heads=4, batch=8)


@pytest.fixture(scope="module")
def fp32():
    return measure_training_rss(RSSRun(**SMALL, precision="no"))


@pytest.fixture(scope="module")
def bf16_checkpointed():
    return measure_training_rss(RSSRun(**SMALL, precision="bf16", checkpointing=True))


def _within(planned, measured, tolerance=0.15):
    return abs(planned / measured - 1) <= tolerance


def test_fp32_estimate_within_15_percent_of_peak_rss(fp32):
    assert fp32.measured > 100 * 2**20  # the model's memory, well above page-level noise
    assert fp32.peak_phase == "forward"
    assert _within(fp32.planned, fp32.measured), (fp32.ratio, fp32.components)


def test_bf16_checkpointed_estimate_within_15_percent_of_peak_rss(bf16_checkpointed):
    m = bf16_checkpointed
    assert m.peak_phase == "backward"
    assert _within(m.planned, m.measured), (m.ratio, m.components)


def test_the_check_fails_when_a_component_is_dropped(fp32, bf16_checkpointed):
    """The comparison has power: a planner that forgot a large component would miss by > 15 %.

    (Components under 15 % of the total, e.g. the gradients here, cannot be told apart by a
    15 % check; test_memory.py checks the formulas themselves.)
    """
    c = fp32.components
    assert not _within(fp32.planned - c["activations"], fp32.measured)
    m = bf16_checkpointed
    c = m.components
    # AdamW's moments, or the two EMA copies (the trainer's and the objective's teacher):
    # each 2 of the state's 5 weight-sized copies
    assert c["state"] == 5 * c["gradients"]
    assert not _within(m.planned - 2 * c["gradients"], m.measured)


def test_bad_allocator():
    with pytest.raises(ValueError, match="allocator must be"):
        measure_training_rss(RSSRun(**SMALL), allocator="jemalloc")
