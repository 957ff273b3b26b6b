"""Exercise of notebook 15: the MeanFlow target by a Jacobian-vector product."""

from __future__ import annotations

import torch

from . import solutions
from .core import Exercise, check, compare, register

__all__ = ["check_meanflow_target"]


def _check_meanflow_target(answer) -> int:
    from ..flow_maps import meanflow_target
    from ..networks import MLP2D

    cases = 0
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = MLP2D(hidden=16, depth=2, time_embed_dim=8, time_scale=3.0, flow_map=True).double()
        g = torch.Generator().manual_seed(100 + seed)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        z = torch.randn(5, 2, generator=g, dtype=torch.float64)
        v = torch.randn(5, 2, generator=g, dtype=torch.float64)
        t = 0.2 + 0.7 * torch.rand(5, generator=g, dtype=torch.float64)
        for label, r in (("r = 0", torch.zeros_like(t)), ("0 < r < t", 0.4 * t), ("r = t", t)):

            def u(z_in, r_in, t_in, net=net):
                return net(z_in, t_in, r=r_in)

            expected = meanflow_target(net, z, r, t, v)[2]
            got = answer(u, z.clone(), r.clone(), t.clone(), v.clone())
            compare(got, expected, f"network seed {seed}, {label}", atol=1e-9)
            cases += 1
    return cases


register(
    Exercise(
        "meanflow_target",
        "the MeanFlow target u_tgt = v - (t - r) du/dt, du/dt by torch.func.jvp",
        "15_flow_maps.ipynb",
        _check_meanflow_target,
        solutions.meanflow_target,
        hints=(
            "the target is the instantaneous velocity minus (t - r) times how fast u changes "
            "when you move along the flow: z with velocity v, t forward, r held fixed.",
            "the MeanFlow identity u = v - (t - r) du/dt (differentiate (t - r) u = integral of v "
            "from r to t in t); du/dt is one forward-mode derivative: torch.func.jvp.",
            "du_dt = torch.func.jvp(u, (z, r, t), (v, zeros_like(r), ones_like(t)))[1]; "
            "return v - (t - r)[:, None] * du_dt.",
        ),
        shortcuts=(
            "ucgm_lab.flow_maps.objective:meanflow_target",
            "ucgm_lab.flow_maps.objective:MeanFlowObjective.__call__",
        ),
    )
)


def check_meanflow_target(answer):
    """Check ``answer(u, z, r, t, v)`` with ``u(z, r, t)`` a flow map; shapes (B, 2) and (B,)."""
    return check("meanflow_target", answer)
