"""Exercises of notebook 03: one UCGM-S step with kappa, the stochastic step, rho from Euler-Maruyama."""

from __future__ import annotations

import torch

from ..sampler import auto_stochastic_ratio, extrapolate, reconstruct
from ..transports import Decomposition, get_transport
from . import solutions
from .core import Exercise, check, compare, register

__all__ = ["check_euler_maruyama_rho", "check_stochastic_step", "check_ucgm_s_step"]

_STEPS = (("linear", 0.8, 0.6), ("trigflow", 0.5, 0.3), ("random", 0.3, 0.05))


def _estimates(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 2, generator=g, dtype=torch.float64) for _ in range(5)]


def _check_ucgm_s_step(answer) -> int:
    cases = 0
    for k, (name, t_now, t_next) in enumerate(_STEPS):
        tr = get_transport(name)
        c = tr.coefficients(torch.tensor(t_next, dtype=torch.float64))
        x_hat, z_hat, prev_x, prev_z, _ = _estimates(10 + k)
        for kappa in (0.0, 0.3, 0.5):
            est = Decomposition(
                extrapolate(x_hat, prev_x, kappa), extrapolate(z_hat, prev_z, kappa)
            )
            expected = reconstruct(tr, est, torch.tensor(t_next, dtype=torch.float64), 0.0, None)
            got = answer(x_hat, z_hat, prev_x, prev_z, kappa, float(c.alpha), float(c.gamma))
            compare(
                got, expected, f"transport {tr.name}, step t = {t_now} -> {t_next}, kappa = {kappa}"
            )
            cases += 1
    return cases


register(
    Exercise(
        "ucgm_s_step",
        "one deterministic UCGM-S step with extrapolation kappa (Alg. 2 lines 5 and 8)",
        "03_sampler_derivations.ipynb",
        _check_ucgm_s_step,
        solutions.ucgm_s_step,
        hints=(
            "push both estimates a little further along their own change, then rebuild the state at the next time.",
            "Alg. 2 line 5 (extrapolation with kappa) and line 8 with rho = 0 (reconstruction with the coefficients at t_(i+1)).",
            "x_ext = x_hat + kappa (x_hat - prev_x_hat); z_ext likewise; return alpha_next * z_ext + gamma_next * x_ext (alpha weighs the noise).",
        ),
        shortcuts=(
            "ucgm_lab.sampler:extrapolate",
            "ucgm_lab.sampler:reconstruct",
            "ucgm_lab.sampler:sample",
            "ucgm_lab.sampler:multistep_estimates",
        ),
    )
)


def check_ucgm_s_step(answer):
    """Check ``answer(x_hat, z_hat, prev_x_hat, prev_z_hat, kappa, alpha_next, gamma_next)``."""
    return check("ucgm_s_step", answer)


def _check_stochastic_step(answer) -> int:
    cases = 0
    for k, (name, _, t_next) in enumerate(_STEPS):
        tr = get_transport(name)
        c = tr.coefficients(torch.tensor(t_next, dtype=torch.float64))
        x_hat, z_hat, _, _, fresh = _estimates(20 + k)
        for rho in (0.0, 0.25, 0.7, 1.0):
            expected = reconstruct(
                tr,
                Decomposition(x_hat, z_hat),
                torch.tensor(t_next, dtype=torch.float64),
                rho,
                fresh,
            )
            got = answer(x_hat, z_hat, fresh, rho, float(c.alpha), float(c.gamma))
            compare(got, expected, f"transport {tr.name}, t_next = {t_next}, rho = {rho}")
            cases += 1
    return cases


register(
    Exercise(
        "stochastic_step",
        "the reconstruction with fresh noise and stochastic ratio rho (Alg. 2 line 8)",
        "03_sampler_derivations.ipynb",
        _check_stochastic_step,
        solutions.stochastic_step,
        hints=(
            "replace a share rho of the estimated noise by fresh noise, keeping the noise at unit variance.",
            "Alg. 2 line 8: the reconstruction alpha_next * (noise) + gamma_next * x_hat with a noise mixed from z_hat and a fresh draw.",
            "noise = sqrt(1 - rho) z_hat + sqrt(rho) eps; return alpha_next * noise + gamma_next * x_hat.",
        ),
        shortcuts=(
            "ucgm_lab.sampler:reconstruct",
            "ucgm_lab.sampler:sample",
        ),
    )
)


def check_stochastic_step(answer):
    """Check ``answer(x_hat, z_hat, fresh_noise, rho, alpha_next, gamma_next)``."""
    return check("stochastic_step", answer)


def _check_euler_maruyama_rho(answer) -> int:
    cases = 0
    for name in ("linear", "trigflow", "triglinear"):
        tr = get_transport(name)
        for t_now, t_next in ((0.9, 0.8), (0.5, 0.45), (0.3, 0.1), (0.2, 0.0), (0.999, 0.5)):
            a, b = (
                torch.tensor(t_now, dtype=torch.float64),
                torch.tensor(t_next, dtype=torch.float64),
            )
            expected = auto_stochastic_ratio(tr, a, b)
            got = answer(float(tr.alpha(a)), float(tr.alpha(b)), t_now, t_next)
            compare(
                got,
                expected,
                f"transport {tr.name}, t_i = {t_now} -> t_(i+1) = {t_next} "
                f"(alpha {float(tr.alpha(a)):.4g} -> {float(tr.alpha(b)):.4g})",
            )
            cases += 1
    return cases


register(
    Exercise(
        "euler_maruyama_rho",
        "the stochastic ratio rho of App. B.1.6 (Euler-Maruyama with g^2 = 2 alpha)",
        "03_sampler_derivations.ipynb",
        _check_euler_maruyama_rho,
        solutions.euler_maruyama_rho,
        hints=(
            "compare the noise an Euler-Maruyama step of the reverse SDE injects with the noise level at the next time.",
            "App. B.1.6: g(t)^2 = 2 alpha(t); the step injects variance g^2 |dt|, relative to alpha(t_(i+1))^2.",
            "rho = 2 |t_i - t_(i+1)| alpha(t_i) / alpha(t_(i+1))^2, clipped to [0, 1]; at alpha(t_(i+1)) = 0 (the data end) take rho = 1.",
        ),
        shortcuts=(
            "ucgm_lab.sampler:auto_stochastic_ratio",
            "ucgm_lab.symbolic.derivations.sampling:stochastic_ratio",
        ),
    )
)


def check_euler_maruyama_rho(answer):
    """Check ``answer(alpha_now, alpha_next, t_now, t_next) -> rho`` (Python floats in, a number out)."""
    return check("euler_maruyama_rho", answer)
