"""Partial gradient checkpointing of the TiT (every k-th block): equal gradients, fewer saved bytes."""

from __future__ import annotations

import pytest
import torch

from ucgm_lab.networks.tit import TiT
from ucgm_lab.training.memory import plan_memory


def _model(ckpt: bool | int) -> TiT:
    torch.manual_seed(0)
    model = TiT(input_size=8, in_channels=4, patch_size=2, hidden_size=64, depth=4,
                num_heads=2, num_classes=4, gradient_checkpointing=ckpt).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model.train()


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    return x, torch.rand(3, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2])


def _saved_bytes_and_grads(model: TiT) -> tuple[int, dict[str, torch.Tensor]]:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    x, t, y = _inputs()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, t, y)
    saved = sum(seen.values())
    out.pow(2).sum().backward()
    return saved, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_every_kth_block_gives_equal_gradients_and_saves_less() -> None:
    results = {k: _saved_bytes_and_grads(_model(k)) for k in (False, 3, 2, True)}
    ref = results[False][1]
    for k, (_, grads) in results.items():
        for name, g in grads.items():
            torch.testing.assert_close(g, ref[name], rtol=1e-12, atol=1e-14, msg=f"{k} {name}")
    saved = {k: s for k, (s, _) in results.items()}
    # 4 blocks: k = 3 and k = 2 recompute blocks {0, 3} and {0, 2}; True all four
    assert saved[False] > saved[3] == saved[2] > saved[True]
    # the planner's activations (its per-block model) fall in the same proportions
    shape_model = _model(False)
    plans = {k: plan_memory(shape_model, 3, "no", k).activations for k in (False, 2, True)}
    measured = (saved[False] - saved[2]) / (saved[False] - saved[True])
    planned = (plans[False] - plans[2]) / (plans[False] - plans[True])
    assert measured == pytest.approx(planned, rel=0.1)


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_bad_checkpointing_setting(bad: object) -> None:
    with pytest.raises(ValueError, match="gradient_checkpointing must be True, False or an integer"):
        TiT(input_size=8, in_channels=4, patch_size=2, hidden_size=64, depth=2, num_heads=2,
            gradient_checkpointing=bad)  # type: ignore[arg-type]
