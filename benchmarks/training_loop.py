"""Training-step cost against a peer, and the Trainer's cost against a bare loop.

1. One UCGM-T step at lambda = 0 against one step of torchcfm's ConditionalFlowMatcher on the
   same MLP and batch (target ratio <= 1.0).
2. ``Trainer.fit`` against a best-practice bare PyTorch loop doing the same work: the same
   objective and data source, backward, gradient clipping, AdamW and an EMA of the weights by
   one multi-tensor ``torch._foreach_lerp_`` (target ratio <= 1.05). Both run in steady state
   (built once, then timed in blocks of steps).

Run: ``python benchmarks/training_loop.py`` (or ``python benchmarks/run_all.py`` for all).
"""

from __future__ import annotations

import copy

import torch
from harness import Case, main

from ucgm_lab import UCGMObjective
from ucgm_lab.networks import MLP2D
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def peer_case(batch: int = 1024) -> Case | None:
    """UCGM lambda = 0 step against torchcfm's step (None when torchcfm is not installed)."""
    try:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
    except ImportError:
        return None
    torch.manual_seed(0)
    x = torch.randn(batch, 2)
    model_a, model_b = MLP2D(), MLP2D()
    opt_a = torch.optim.AdamW(model_a.parameters(), lr=1e-4)
    opt_b = torch.optim.AdamW(model_b.parameters(), lr=1e-4)
    objective, cfm = UCGMObjective("linear", 0.0), ConditionalFlowMatcher(sigma=0.0)

    def ucgm_step() -> None:
        opt_a.zero_grad(set_to_none=True)
        objective(model_a, x).loss.backward()
        opt_a.step()

    def cfm_step() -> None:
        opt_b.zero_grad(set_to_none=True)
        z = torch.randn_like(x)
        t, xt, ut = cfm.sample_location_and_conditional_flow(z, x)
        ((model_b(xt, t) - ut) ** 2).mean().backward()
        opt_b.step()

    return Case(
        "ucgm_vs_torchcfm",
        f"`training_loop.py`: UCGM lambda = 0 step / torchcfm `ConditionalFlowMatcher` step, MLP2D batch {batch}",
        ucgm_step,
        cfm_step,
        target=1.0,
        unit="step",
    )


def trainer_case(batch: int = 1024, steps_per_call: int = 10) -> Case:
    """``Trainer.fit`` against a best-practice bare loop, ``steps_per_call`` steps per call."""
    torch.manual_seed(0)
    data = torch.randn(100_000, 2)
    base_model = MLP2D()
    trainer = Trainer(
        copy.deepcopy(base_model),
        UCGMObjective("linear", 0.0),
        TensorDataSource(data, batch_size=batch, seed=0),
        TrainerConfig(steps=0, progress=False, cpu=True, mixed_precision="no"),
    )

    def run_trainer() -> None:
        trainer.fit(steps=trainer.step + steps_per_call)

    model = copy.deepcopy(base_model)
    params = [p for p in model.parameters() if p.requires_grad]
    objective = UCGMObjective("linear", 0.0)
    cfg = trainer.config
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    ema_params = [p.detach().clone() for p in params]
    source = TensorDataSource(data, batch_size=batch, seed=0)
    generator = torch.Generator().manual_seed(0)

    def run_bare() -> None:
        for _ in range(steps_per_call):
            batch_ = source.next_batch()
            loss = objective(model, batch_.x, generator=generator).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            torch._foreach_lerp_(ema_params, params, 1.0 - cfg.ema_decay)

    return Case(
        "trainer_fit",
        f"`training_loop.py`: `Trainer.fit` / bare loop (same objective, clipping, AdamW, foreach EMA), MLP2D batch {batch}",
        run_trainer,
        run_bare,
        target=1.05,
        unit="step",
        units_per_call=steps_per_call,
    )


def cases(size: str = "full") -> list[Case]:
    """The cases of this file at ``size`` "quick", "small" or "full"."""
    batch, steps = {"quick": (64, 5), "small": (256, 5), "full": (1024, 10)}[size]
    out = [peer_case(batch), trainer_case(batch, steps)]
    return [c for c in out if c is not None]


if __name__ == "__main__":
    main(cases, __doc__)
