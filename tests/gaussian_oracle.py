"""Closed-form optimal network for Gaussian data, written independently of the library's sampler."""

import torch

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
"""The mean of the Gaussian data the sampler tests use."""
COV = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
"""Its covariance."""


class Net(torch.nn.Module):
    """A small trainable-shaped network (no closed form): for tests of the sampler's mechanics."""

    def __init__(self, dim=2):
        super().__init__()
        self.l1 = torch.nn.Linear(dim + 1, 16)
        self.l2 = torch.nn.Linear(16, dim)

    def forward(self, x, t, y=None):
        return self.l2(torch.tanh(self.l1(torch.cat([x, t[:, None].to(x.dtype)], 1))))


class GaussianOracle(torch.nn.Module):
    """F*(x_t, t) = alpha_hat E[z | x_t] + gamma_hat E[x | x_t] for x ~ N(mu, Sigma).

    E[x | x_t] = mu + gamma Sigma (gamma^2 Sigma + alpha^2 I)^-1 (x_t - gamma mu),
    E[z | x_t] = (x_t - gamma E[x | x_t]) / alpha.
    The network receives its own time (transport.model_time); ``to_library_time`` inverts it.
    """

    def __init__(self, transport, mu, cov, to_library_time=lambda s: s):
        super().__init__()
        self.tr = transport
        self.mu = mu.double()
        self.cov = cov.double()
        self.to_library_time = to_library_time

    def forward(self, x_t, t_net, y=None):
        t = self.to_library_time(t_net.double())
        x_t = x_t.double()
        a, g = self.tr.alpha(t), self.tr.gamma(t)
        ah, gh = self.tr.alpha_hat(t), self.tr.gamma_hat(t)
        eye = torch.eye(self.mu.numel(), dtype=torch.float64)
        a_, g_ = a[:, None, None], g[:, None, None]
        m = g_**2 * self.cov + a_**2 * eye  # (B, d, d)
        rhs = (x_t - g[:, None] * self.mu)[..., None]
        ex = self.mu + g[:, None] * (self.cov @ torch.linalg.solve(m, rhs))[..., 0]
        ez = (x_t - g[:, None] * ex) / a[:, None]
        return ah[:, None] * ez + gh[:, None] * ex


def exact_flow_endpoint(noise, t0, alpha, gamma, mu, cov):
    """Exact PF-ODE map from the state at time t0 to the data at t = 0 for Gaussian data.

    The marginal at t is N(gamma mu, gamma^2 Sigma + alpha^2 I); the probability-flow map is the
    symmetric linear map between the two marginals (it commutes with Sigma).
    """
    evals, evecs = torch.linalg.eigh(cov.double())
    a_t, g_t = (
        alpha(torch.tensor(t0, dtype=torch.float64)),
        gamma(torch.tensor(t0, dtype=torch.float64)),
    )
    w = (noise.double() - g_t * mu) @ evecs / torch.sqrt(g_t**2 * evals + a_t**2)
    return (mu + (w * torch.sqrt(evals)) @ evecs.T) * 1.0
