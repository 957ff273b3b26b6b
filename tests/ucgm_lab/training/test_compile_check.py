"""Compiled (inductor) bf16 training gradients of a small TiT equal eager ones (issue 28)."""

from __future__ import annotations

import shutil

import pytest
import torch

from ucgm_lab import BetaTimeDistribution, UCGMObjective
from ucgm_lab.networks.tit import TiT
from ucgm_lab.training.compile_check import compare_compiled_gradients


def _inductor_available() -> bool:
    try:
        import torch._inductor  # noqa: F401
    except ImportError:  # pragma: no cover - a torch build without inductor
        return False
    return any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "c++", "g++"))


inductor = pytest.mark.skipif(
    not _inductor_available(), reason="needs torch inductor and a C/C++ compiler"
)


def _small_tit() -> TiT:
    torch.manual_seed(0)
    model = TiT(
        input_size=8, in_channels=4, hidden_size=64, depth=2, num_heads=2, patch_size=2,
        num_classes=4,
    )
    # random (not adaLN-Zero) weights: gradients flow through every block from the first step
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model


def _objective() -> UCGMObjective:
    # the enhanced target: a no-grad teacher forward besides the trained one
    return UCGMObjective(
        "linear", 0.0, time_distribution=BetaTimeDistribution(2.4, 2.4), enhancement_ratio=0.44
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 4, 8, 8, generator=g), torch.randint(0, 4, (4,), generator=g)


@inductor
def test_inductor_bf16_gradients_are_finite_and_equal_eager() -> None:
    x, y = _batch()
    result = compare_compiled_gradients(_small_tit(), _objective, x, y, dtype=torch.bfloat16)
    assert result.finite, result.non_finite_parameters
    assert result.eager_loss == pytest.approx(result.compiled_loss, rel=2e-2)
    # bf16 keeps 8 significant bits (relative rounding 2**-9); the two graphs round and fuse
    # differently, so per-parameter gradients agree to a few bf16 roundings, not bitwise
    assert result.max_relative_error < 5e-2, result


def test_comparison_flags_a_different_gradient() -> None:
    """The comparison is not vacuous: a compile backend that changes the block is caught."""

    def scaled(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]):  # noqa: ANN202
        # the block's output, 1.5 times too large
        return lambda *args: tuple(o * 1.5 for o in gm(*args))

    x, y = _batch()
    result = compare_compiled_gradients(_small_tit(), _objective, x, y, dtype=None,
                                        backend=scaled)
    assert result.finite
    assert result.max_relative_error > 0.1
