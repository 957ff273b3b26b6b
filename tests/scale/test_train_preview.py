"""scale.train's sample grids: the network samples in evaluation.precision, not the training's."""

from types import SimpleNamespace

import pytest
import torch

from scale.config import load_config
from scale.train import SampleGrid
from tests.scale.helpers import TINY_CONFIG
from ucgm_lab.networks.tit import tit_from_name


@pytest.mark.parametrize(
    ("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)]
)
def test_grid_samples_in_the_evaluation_precision_under_a_training_autocast(
    precision, dtype, tmp_path
):
    cfg = load_config(
        TINY_CONFIG,
        [f"evaluation.precision={precision}", "training.log_with=none", "sampling.steps=2"],
    )
    torch.manual_seed(0)
    ema = tit_from_name("TiT-tiny/1", input_size=4, in_channels=4, num_classes=4).eval()
    seen = []
    ema.blocks[0].attn.qkv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    trainer = SimpleNamespace(
        is_main_process=True,
        # a bf16 training accelerator
        accelerator=SimpleNamespace(
            device=torch.device("cpu"), autocast=lambda: torch.autocast("cpu", torch.bfloat16)
        ),
        ema_model=ema,
    )
    grid = SampleGrid(cfg, tmp_path, None, (4, 4, 4))
    # as in a bf16 run: the callback must not inherit the training's autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grid(trainer, 4, {})
    assert seen and set(seen) == {dtype}
    assert (tmp_path / "samples" / "step_0000004.png").is_file()
