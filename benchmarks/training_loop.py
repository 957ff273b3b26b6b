"""Training-step cost against peers and the Trainer's overhead over a bare loop.

1. One UCGM-T step at lambda = 0 against one step of torchcfm's ConditionalFlowMatcher on the
   same MLP and batch (target ratio <= 1.0).
2. ``Trainer.fit`` against a bare PyTorch loop doing the same work (objective, backward,
   clipping, AdamW, EMA) (target ratio <= 1.05).

Run: ``python benchmarks/training_loop.py``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from _timing import interleaved_ratio

from ucgm_lab import ExponentialMovingAverage, UCGMObjective
from ucgm_lab.networks import MLP2D
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 2)

    # 1. UCGM lambda=0 versus torchcfm
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

    model_a, model_b = MLP2D(), MLP2D()
    opt_a = torch.optim.AdamW(model_a.parameters(), lr=1e-4)
    opt_b = torch.optim.AdamW(model_b.parameters(), lr=1e-4)
    objective, cfm = UCGMObjective("linear", 0.0), ConditionalFlowMatcher(sigma=0.0)

    def ucgm_step():
        opt_a.zero_grad(set_to_none=True)
        objective(model_a, x).loss.backward()
        opt_a.step()

    def cfm_step():
        opt_b.zero_grad(set_to_none=True)
        z = torch.randn_like(x)
        t, xt, ut = cfm.sample_location_and_conditional_flow(z, x)
        ((model_b(xt, t) - ut) ** 2).mean().backward()
        opt_b.step()

    c, b, r = interleaved_ratio(ucgm_step, cfm_step)
    print(
        f"UCGM lambda=0 step {1e3 * c:6.2f} ms | torchcfm step {1e3 * b:6.2f} ms | ratio {r:5.3f} (target <= 1.0)"
    )

    # 2. Trainer.fit versus a bare loop with the same work
    data = torch.randn(100_000, 2)
    base_model = MLP2D()

    def run_trainer():
        trainer = Trainer(
            copy.deepcopy(base_model),
            UCGMObjective("linear", 0.0),
            TensorDataSource(data, batch_size=args.batch, seed=0),
            TrainerConfig(
                steps=args.steps, progress=False, cpu=True, mixed_precision="no", log_every=50
            ),
        )
        trainer.fit()

    def run_bare():
        model = copy.deepcopy(base_model)
        obj = UCGMObjective("linear", 0.0)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95))
        ema = ExponentialMovingAverage(model, 0.999)
        source = TensorDataSource(data, batch_size=args.batch, seed=0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(args.steps):
            batch = source.next_batch()
            loss = obj(model, batch.x, generator=gen).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema.update(model)

    start = time.perf_counter()
    c, b, r = interleaved_ratio(run_trainer, run_bare, rounds=3, repeats=1)
    print(
        f"Trainer.fit {args.steps} steps {c:6.2f} s | bare loop {b:6.2f} s | ratio {r:5.3f} (target <= 1.05) "
        f"[{time.perf_counter() - start:.0f} s]"
    )


if __name__ == "__main__":
    main()
