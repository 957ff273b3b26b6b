"""Reference solutions of the exercises (shown on demand by ``show_solution(name)``).

Each function has exactly the signature of the stub in its notebook. They are written for
reading: plain tensor arithmetic with the equation numbers of the paper
(https://arxiv.org/abs/2505.07447). Time runs as in the library: data at t = 0, noise at t = 1.
"""

from __future__ import annotations

import math

import torch

# ---------------------------------------------------------------------- notebook 01


def prediction_functions(F, x_t, alpha, gamma, alpha_hat, gamma_hat):
    """Eq. (2): the data and noise estimates (x_hat, z_hat) from one network output F."""
    D = alpha * gamma_hat - alpha_hat * gamma
    x_hat = (alpha * F - alpha_hat * x_t) / D
    z_hat = (gamma_hat * x_t - gamma * F) / D
    return x_hat, z_hat


def solve_eq2(x_t, F, x, z, alpha, gamma, alpha_hat, gamma_hat):
    """Solve the two mixtures of section 3.1 for the data x and the noise z with SymPy."""
    import sympy as sp

    equations = [
        sp.Eq(x_t, alpha * z + gamma * x),
        sp.Eq(F, alpha_hat * z + gamma_hat * x),
    ]
    solution = sp.solve(equations, [x, z], dict=True)[0]
    return solution[x], solution[z]


def flow_matching_target(alpha_hat, gamma_hat, x, z):
    """The regression target of objective (1), alpha_hat z + gamma_hat x (lambda = 0, App. B.1.3)."""
    return alpha_hat * z + gamma_hat * x


def target_factor(alpha, D, t):
    """The factor 4 alpha / (D sin(pi t / 2)) of Alg. 1 line 15 (-4 for TrigFlow)."""
    return 4 * alpha / (D * torch.sin(math.pi * t / 2))


def alg1_target(model, transport, x, z, t, lam, eps=0.005, clip=1.0):
    """F_target of Alg. 1 for lambda in (0, 1] (lines 3, 8-15; no enhanced target).

    model(x_t, t) -> F; x, z of shape (B, d); t of shape (B,).
    """
    tb = t[:, None]
    c = transport.coefficients(tb)
    x_t = c.alpha * z + c.gamma * x
    with torch.no_grad():  # sg(.) of Alg. 1: nothing in the target carries a gradient
        F_t = model(x_t, t)
        if lam < 1:
            r = lam * t
            c_r = transport.coefficients(r[:, None])
            x_r = c_r.alpha * z + c_r.gamma * x
            f_now = transport.predict_x(F_t, x_t, tb)
            f_before = transport.predict_x(model(x_r, r), x_r, r[:, None])
            delta = (f_now - f_before) / (tb - r[:, None])
        else:  # lambda = 1: central difference of half-width eps (line 13)
            f = []
            for s in (t + eps, t - eps):
                c_s = transport.coefficients(s[:, None])
                x_s = c_s.alpha * z + c_s.gamma * x
                f.append(transport.predict_x(model(x_s, s), x_s, s[:, None]))
            delta = (f[0] - f[1]) / (2 * eps)
        delta = delta.clamp(-clip, clip)
        return F_t - 4 * c.alpha / (c.D * torch.sin(math.pi * tb / 2)) * delta


# ---------------------------------------------------------------------- notebook 02

CONSTRAINT_NAMES = (
    "alpha(0)=0",
    "alpha(1)=1",
    "alpha nondecreasing",
    "gamma(0)=1",
    "gamma(1)=0",
    "gamma nonincreasing",
    "D nonzero",
)


def constraint_violations(alpha, gamma, alpha_hat, gamma_hat, grid, tol=1e-6):
    """The names (from CONSTRAINT_NAMES) of the constraints (a)-(c) of section 3.1 that fail.

    alpha, ... are functions of a tensor t; grid is an increasing tensor from 0 to 1.
    """
    a, g = alpha(grid), gamma(grid)
    D = a * gamma_hat(grid) - alpha_hat(grid) * g
    inner = D[1:-1]
    failed = set()
    if abs(float(a[0])) > tol:
        failed.add("alpha(0)=0")
    if abs(float(a[-1]) - 1) > tol:
        failed.add("alpha(1)=1")
    if (torch.diff(a) < -tol).any():
        failed.add("alpha nondecreasing")
    if abs(float(g[0]) - 1) > tol:
        failed.add("gamma(0)=1")
    if abs(float(g[-1])) > tol:
        failed.add("gamma(1)=0")
    if (torch.diff(g) > tol).any():
        failed.add("gamma nonincreasing")
    if (inner.abs() <= tol).any() or (inner.min() < 0 < inner.max()):
        failed.add("D nonzero")
    return failed


def epsilon_to_velocity(eps, x_t, t):
    """Turn a noise (epsilon) prediction at x_t = t z + (1 - t) x into the Linear transport's F = z - x."""
    x_hat = (x_t - t * eps) / (1 - t)
    return eps - x_hat


# ---------------------------------------------------------------------- notebook 03


def ucgm_s_step(x_hat, z_hat, prev_x_hat, prev_z_hat, kappa, alpha_next, gamma_next):
    """One deterministic UCGM-S step (Alg. 2 lines 5 and 8 with rho = 0)."""
    x_ext = x_hat + kappa * (x_hat - prev_x_hat)
    z_ext = z_hat + kappa * (z_hat - prev_z_hat)
    return alpha_next * z_ext + gamma_next * x_ext


def stochastic_step(x_hat, z_hat, fresh_noise, rho, alpha_next, gamma_next):
    """The reconstruction with fresh noise, Alg. 2 line 8."""
    noise = math.sqrt(1 - rho) * z_hat + math.sqrt(rho) * fresh_noise
    return alpha_next * noise + gamma_next * x_hat


def euler_maruyama_rho(alpha_now, alpha_next, t_now, t_next):
    """Rho = clip(2 |t_i - t_{i+1}| alpha(t_i) / alpha(t_{i+1})^2, 0, 1) (App. B.1.6)."""
    if alpha_next == 0:
        return 1.0
    return min(1.0, max(0.0, 2 * abs(t_now - t_next) * alpha_now / alpha_next**2))


# ---------------------------------------------------------------------- notebook 04


def kumaraswamy_grid(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
    """The sampling times t_0 > ... > t_{N-1} > t_N = 0: flipped Kumaraswamy of a uniform grid."""
    u = torch.linspace(gap_noise, 1 - gap_data, steps, dtype=torch.float64)
    k = (1 - (1 - u**a) ** b) ** c
    return torch.cat([1 - k, torch.zeros(1, dtype=torch.float64)])


def beta_mode(theta1, theta2):
    """The peak of the Beta(theta1, theta2) density (theta1, theta2 > 1), App. B.2.1."""
    return (theta1 - 1) / (theta1 + theta2 - 2)


# ---------------------------------------------------------------------- notebook 05


def flow_matching_optimum(mu, t, x_t):
    """E[x | x_t] for x ~ N(mu, 1) under TrigFlow (App. B.1.5, lambda = 0)."""
    gamma = math.cos(math.pi * t / 2)
    return (1 - gamma**2) * mu + gamma * x_t


def consistency_optimum(mu, t, x_t):
    """The end point x(0) of the PF-ODE through x_t for x ~ N(mu, 1), TrigFlow (lambda -> 1)."""
    gamma = math.cos(math.pi * t / 2)
    return x_t + (1 - gamma) * mu


# ---------------------------------------------------------------------- notebook 15


def meanflow_target(u, z, r, t, v):
    """MeanFlow's target v - (t - r) du/dt, du/dt = v d_z u + d_t u by one JVP (MeanFlow eqs. 10-11)."""
    tangents = (v, torch.zeros_like(r), torch.ones_like(t))
    _, du_dt = torch.func.jvp(u, (z, r, t), tangents)
    return v - (t - r)[:, None] * du_dt
