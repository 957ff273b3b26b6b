"""Per-block torch.compile of a TiT: same outputs and gradients as eager; copies compile alike."""

import copy

import pytest
import torch

from ucgm_lab.ema import ExponentialMovingAverage
from ucgm_lab.networks.tit import TiT
from ucgm_lab.objective import UCGMObjective
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig
from ucgm_lab.training.trainer import _compile_mode

pytestmark = pytest.mark.timeout(300)


def _tiny(seed=0):
    torch.manual_seed(seed)
    model = TiT(
        input_size=8,
        in_channels=4,
        patch_size=2,
        hidden_size=32,
        depth=2,
        num_heads=2,
        num_classes=4,
    )
    with torch.no_grad():  # non-zero adaLN-Zero and output layers, so every block matters
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 8, 8, generator=g)
    return x, torch.rand(batch, generator=g), torch.randint(0, 5, (batch,), generator=g)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_blocks_give_the_eager_outputs_and_gradients(backend):
    eager = _tiny()
    compiled = copy.deepcopy(eager).compile_blocks(backend=backend)
    assert all(b._compiled_call_impl is not None for b in compiled.blocks)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # in place: same names
    x, t, y = _inputs()
    out_e, out_c = eager(x, t, y), compiled(x, t, y)
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-6)
    out_e.square().sum().backward()
    out_c.square().sum().backward()
    for p, q in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)


def test_copies_of_a_compiled_model_are_compiled_and_use_their_own_weights():
    model = _tiny().compile_blocks(backend="eager")
    clone = copy.deepcopy(model)  # how the objective's teachers are made
    assert all(b._compiled_call_impl is not None for b in clone.blocks)
    assert clone.block_compile_options == {"backend": "eager"}
    assert all(c is not b for c, b in zip(clone.blocks, model.blocks, strict=True))
    with torch.no_grad():
        for p in clone.parameters():
            p.mul_(2.0)
    x, t, y = _inputs()
    assert not torch.allclose(clone(x, t, y), model(x, t, y))
    reference = _tiny()  # eager, with the clone's (doubled) weights
    reference.load_state_dict(clone.state_dict())
    torch.testing.assert_close(clone(x, t, y), reference(x, t, y), rtol=1e-5, atol=1e-6)
    ema = ExponentialMovingAverage(model, 0.9)
    assert all(b._compiled_call_impl is not None for b in ema.model.blocks)
    # an uncompiled model copies as before
    assert copy.deepcopy(_tiny()).blocks[0]._compiled_call_impl is None


def test_compile_modes():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    tit, mlp = _tiny(), torch.nn.Linear(2, 2)
    assert _compile_mode("auto", tit, cpu) == "none"
    assert _compile_mode("auto", tit, cuda) == "blocks"
    assert _compile_mode("auto", mlp, cuda) == "model"
    assert _compile_mode(True, tit, cpu) == "blocks"
    assert _compile_mode("model", tit, cpu) == "model"
    assert _compile_mode(False, tit, cuda) == "none"
    with pytest.raises(ValueError, match="compile must be"):
        TrainerConfig(compile="fast")


def test_trainer_with_compiled_blocks_trains_like_eager():
    """Blocks compiled after accelerate's prepare (aot_eager: the graph capture, no compiler)."""

    def run(compile_option):
        torch.manual_seed(5)
        latents = torch.randn(32, 4, 8, 8)
        labels = torch.randint(0, 4, (32,))
        objective = UCGMObjective("linear", 0.0, enhancement_ratio=0.5)
        config = TrainerConfig(
            steps=3,
            lr=1e-3,
            ema_decay=0.9,
            progress=False,
            cpu=True,
            compile=compile_option,
            compile_backend="aot_eager",
        )
        data = TensorDataSource(latents, labels, batch_size=8, seed=0)
        trainer = Trainer(_tiny(), objective, data, config)
        return trainer, trainer.fit()

    eager, a = run(False)
    compiled, b = run("blocks")
    assert compiled.compile_mode == "blocks" and eager.compile_mode == "none"
    assert all(blk._compiled_call_impl is not None for blk in compiled.unwrapped_model.blocks)
    teacher = compiled.objective.ema_teacher.model
    assert all(blk._compiled_call_impl is not None for blk in teacher.blocks)
    assert b.losses == pytest.approx(a.losses, rel=1e-4, abs=1e-6)
    for p, q in zip(
        eager.unwrapped_model.parameters(), compiled.unwrapped_model.parameters(), strict=True
    ):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
