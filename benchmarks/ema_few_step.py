"""Your own network on your own 2D data, with the Trainer's defaults: the EMA and the few-step ratio.

Issue 30. A user's network -- an MLP with a DiT-style sinusoidal embedding of ``1000 t`` --
on a 2D data set the project does not ship (a five-armed pinwheel, generated here), wrapped as
the time warning says (``TimeScaled(network, 0.03)``), trained

* lambda = 0 with the Trainer's defaults (only ``steps`` and ``lr`` set), then
* lambda = 1 from its checkpoint (``Trainer.start_from``) with the documented few-step
  optimizer set (``TrainerConfig.few_step``: RAdam, betas (0.9, 0.999)), only ``steps`` and
  ``lr`` set.

Beside the trainer's EMA (the default: decay 0.999 with the ramp min(d, (1 + k) / (10 + k)))
a callback keeps the old default, a fixed-decay 0.999 EMA, on the same raw weights, so the
comparison EMA against raw weights, before (fixed) and after (ramp), costs no second run. The
lambda = 1 run starts from the lambda = 0 run's (ramped) EMA; the fixed EMA of the lambda = 1
run starts from the same weights, as the old default did.

It also records the time check on the raw (unwrapped) network during its lambda = 0 run.

Metric: exact W2 (``ucgm_lab.metrics.wasserstein2``) between 2000 samples and 2000 held-out
points; 2 NFE for the few-step model is ``sample(..., steps=2, rho=1.0)`` (t = 0.999, 0.4995,
the paper's rho = lambda), 100 NFE for the multi-step model is ``sample(..., steps=100)``.

Run: ``nice -n 10 python benchmarks/ema_few_step.py [--seeds 0 1] [--write]`` (about 2 minutes
per seed on an idle 2-core CPU); ``--write`` replaces the section "ema-few-step" of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.docs_writer import write_section  # noqa: E402
from benchmarks.harness import machine_info  # noqa: E402
from ucgm_lab import UCGMObjective, sample  # noqa: E402
from ucgm_lab.ema import ExponentialMovingAverage  # noqa: E402
from ucgm_lab.metrics import metric_floor, wasserstein2  # noqa: E402
from ucgm_lab.networks import TimeScaled  # noqa: E402
from ucgm_lab.time_sensitivity import TimeSensitivityWarning  # noqa: E402
from ucgm_lab.training import TensorDataSource, Trainer, TrainerConfig  # noqa: E402


def pinwheel(n: int, seed: int) -> Tensor:
    """A five-armed pinwheel (Johnson et al. 2016's toy density), shape (n, 2), std about 1."""
    g = torch.Generator().manual_seed(seed)
    arm = torch.randint(0, 5, (n,), generator=g)
    feats = torch.randn(n, 2, generator=g) * torch.tensor([0.3, 0.08]) + torch.tensor([1.0, 0.0])
    angle = arm * (2 * math.pi / 5) + 0.25 * torch.exp(feats[:, 0])
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return 1.3 * (rot @ feats[:, :, None]).squeeze(-1)


class UserNet(nn.Module):
    """A user's network: DiT's timestep embedder (sinusoids of 1000 t, 256 features, an MLP)."""

    def __init__(self, hidden: int = 128, depth: int = 4, freq: int = 256) -> None:
        super().__init__()
        half = freq // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(half) / half))
        self.t_mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.x_in = nn.Linear(2, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        a = 1000 * t[:, None] * self.freqs  # DiT: t in [0, 1000]
        h = self.x_in(x) + self.t_mlp(torch.cat([a.cos(), a.sin()], -1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


def _fixed_ema_callback(ema: ExponentialMovingAverage):
    def callback(trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        ema.update(trainer.model)

    return callback


def _w2(model: nn.Module, noise: Tensor, reference: Tensor, **kwargs: object) -> float:
    out = sample(model, noise, "linear", generator=torch.Generator().manual_seed(1), **kwargs)
    return wasserstein2(out.sample, reference)


def time_check_on_raw(data: TensorDataSource) -> tuple[bool, float]:
    """One lambda = 0 step of the raw network: did the check warn, and its r."""
    torch.manual_seed(0)
    objective = UCGMObjective("linear", 0.0)
    trainer = Trainer(UserNet(), objective, data, TrainerConfig(steps=1, progress=False, cpu=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()
    fired = any(issubclass(w.category, TimeSensitivityWarning) for w in caught)
    return fired, float(objective.time_sensitivity.relative_change)


def run_seed(seed: int, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """lambda = 0 then lambda = 1 for one seed; W2 of every model."""
    train = pinwheel(20000, seed=100 + seed)
    reference = pinwheel(args.samples, seed=10_000 + seed)
    noise = torch.randn(args.samples, 2, generator=torch.Generator().manual_seed(seed))
    data = TensorDataSource(train, batch_size=args.batch, seed=seed)
    out: dict[str, float] = {}

    torch.manual_seed(seed)
    net0 = TimeScaled(UserNet(), 0.03)
    fixed0 = ExponentialMovingAverage(net0, 0.999)
    cfg0 = TrainerConfig(
        steps=args.steps0,
        lr=2e-3,
        seed=seed,
        progress=False,
        cpu=True,
        checkpoint_dir=str(folder / f"lam0-{seed}"),
    )
    obj0 = UCGMObjective("linear", 0.0)
    t0 = time.perf_counter()
    trainer0 = Trainer(net0, obj0, data, cfg0, callbacks=[(1, _fixed_ema_callback(fixed0))])
    result0 = trainer0.fit()
    out["seconds0"] = time.perf_counter() - t0
    out["lam0_r"] = obj0.time_sensitivity.relative_change
    for name, model in (
        ("ema", trainer0.ema_model),
        ("fixed", fixed0.model),
        ("raw", trainer0.unwrapped_model),
    ):
        out[f"lam0_{name}_100"] = _w2(model, noise, reference, steps=100)
    out["lam0_ema_2"] = _w2(trainer0.ema_model, noise, reference, steps=2)

    torch.manual_seed(seed)
    net1 = TimeScaled(UserNet(), 0.03)
    cfg1 = TrainerConfig.few_step(
        steps=args.steps1,
        lr=2e-4,
        seed=seed,
        progress=False,
        cpu=True,
        checkpoint_dir=str(folder / f"lam1-{seed}"),
    )
    data1 = TensorDataSource(train, batch_size=args.batch, seed=seed + 1)
    t1 = time.perf_counter()
    trainer1 = Trainer(net1, UCGMObjective("linear", 1.0), data1, cfg1)
    trainer1.start_from(result0.checkpoint)
    fixed1 = ExponentialMovingAverage(trainer1.unwrapped_model, 0.999)
    trainer1.callbacks.append((1, _fixed_ema_callback(fixed1)))
    trainer1.fit()
    out["seconds1"] = time.perf_counter() - t1
    for name, model in (
        ("ema", trainer1.ema_model),
        ("fixed", fixed1.model),
        ("raw", trainer1.unwrapped_model),
    ):
        for nfe in (1, 2, 4):
            out[f"lam1_{name}_{nfe}"] = _w2(model, noise, reference, steps=nfe, rho=1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps0", type=int, default=3000)
    parser.add_argument("--steps1", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = machine_info()
    start = time.perf_counter()
    fired, r_raw = time_check_on_raw(
        TensorDataSource(pinwheel(20000, 100), batch_size=args.batch, seed=0)
    )
    print(f"raw network, lambda = 0, first step: warned {fired}, r = {r_raw:.3f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = run_seed(seed, args, Path(tmp))
            rows.append(row)
            print(seed, {k: round(v, 4) for k, v in row.items()}, flush=True)
    floor = metric_floor("w2", lambda n, s: pinwheel(n, 50_000 + s), args.samples, repeats=3)
    minutes = (time.perf_counter() - start) / 60

    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows)

    def cells(key: str) -> str:
        values = " / ".join(f"{r[key]:.3f}" for r in rows)
        return f"{mean(key):.3f} ({values})" if len(rows) > 1 else values

    seeds = ", ".join(str(s) for s in args.seeds)
    lines = [
        "## Your own network, the Trainer's defaults: the EMA and the few-step ratio",
        "",
        f"Run time {minutes:.0f} min. A user's MLP with DiT's embedding of 1000 t, "
        "wrapped in `TimeScaled(network, 0.03)` as the time warning says, on a five-armed "
        f"pinwheel (generated; not shipped), batch {args.batch}: lambda = 0 for {args.steps0} "
        f"steps (lr 2e-3), then lambda = 1 from its checkpoint for {args.steps1} steps "
        "(`TrainerConfig.few_step`, lr 2e-4); nothing else set. Exact W2 at "
        f"{args.samples} samples against held-out data, mean over seeds {seeds} (each seed "
        f"in brackets); floor (data against data) {floor.mean:.3f} +- {floor.std:.3f}. "
        "lambda = 1: `sample(..., steps=N, rho=1.0)`; lambda = 0: `steps=100`.",
        "",
        f"The time check on the raw (unwrapped) network during its lambda = 0 run: "
        f"{'warned' if fired else 'did not warn'} at the first step (r = {r_raw:.3f}); on the "
        f"wrapped network r = {mean('lam0_r'):.4f} (no warning).",
        "",
        "| weights | lambda=0 @100 | lambda=1 @1 | lambda=1 @2 | lambda=1 @4 | ratio @2 |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("raw", "raw weights"),
        ("fixed", "EMA, fixed decay 0.999 (the old default)"),
        ("ema", "EMA, 0.999 with the ramp (the default)"),
    ):
        ratio = statistics.fmean(r[f"lam1_{name}_2"] / r[f"lam0_{name}_100"] for r in rows)
        lines.append(
            f"| {label} | {cells(f'lam0_{name}_100')} | {cells(f'lam1_{name}_1')} "
            f"| {cells(f'lam1_{name}_2')} | {cells(f'lam1_{name}_4')} | {ratio:.2f} |"
        )
    ratio_default = statistics.fmean(r["lam1_ema_2"] / r["lam0_ema_100"] for r in rows)
    lines += [
        "",
        f"With the defaults the few-step model at 2 NFE is {ratio_default:.2f}x the multi-step "
        "model at 100 NFE (ratio @2: lambda = 1 at 2 NFE over lambda = 0 at 100 NFE of the same "
        "kind of weights, per seed, then averaged). The lambda = 1 run starts from the ramped "
        "lambda = 0 EMA for every row; the fixed EMA keeps "
        f"0.999^{args.steps1} = {0.999**args.steps1:.0%} of that parent at the end, and "
        f"0.999^{args.steps0} = {0.999**args.steps0:.0%} of the random initial weights at "
        "the end of the lambda = 0 run.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        options = shlex.join(a for a in sys.argv[1:] if a != "--write")
        command = f"python benchmarks/ema_few_step.py --write {options}".strip()
        section = write_section("ema-few-step", text, command=command, machine=machine.finish())
        print("wrote", section)


if __name__ == "__main__":
    main()
