import torch

from ucgm_lab.exercises import solutions


def test_meanflow_target(accepts, rejects):
    accepts("meanflow_target", solutions.meanflow_target)

    def r_moves_with_t(u, z, r, t, v):  # tangent 1 for r: d/dt at fixed t - r
        _, d = torch.func.jvp(u, (z, r, t), (v, torch.ones_like(r), torch.ones_like(t)))
        return v - (t - r)[:, None] * d

    rejects("meanflow_target", r_moves_with_t, "network seed 0, r = 0")

    def partial_t_only(u, z, r, t, v):  # forgets v . d_z u
        _, d = torch.func.jvp(
            u, (z, r, t), (torch.zeros_like(z), torch.zeros_like(r), torch.ones_like(t))
        )
        return v - (t - r)[:, None] * d

    rejects("meanflow_target", partial_t_only, "r = 0")

    def plus_sign(u, z, r, t, v):
        return 2 * v - solutions.meanflow_target(u, z, r, t, v)

    rejects("meanflow_target", plus_sign, "r = 0")
