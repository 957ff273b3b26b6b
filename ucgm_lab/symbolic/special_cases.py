"""Tab. 1 and the constraints of section 3.1, checked symbolically.

* :func:`special_cases`: EDM (diffusion), OT flow matching and sCM (consistency) as UCGM
  parameterizations (Tab. 1): each comes with the residuals ``simplify(ours - theirs)``.
* :func:`check_constraints`: constraints (a), (b), (c) of section 3.1 for a transport, with
  constraint (c) (D(t) != 0 on (0, 1)) decided symbolically where SymPy can.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
import torch

from .derivations import F, target_factor, x, x_t, z
from .numeric import lambdify_torch
from .transports import EDM_SIGMA, SymbolicTransport, symbolic_transport

__all__ = [
    "ConstraintReport",
    "SpecialCase",
    "check_constraints",
    "edm_as_trigflow",
    "special_cases",
]


@dataclass(frozen=True)
class SpecialCase:
    """One row of Tab. 1: a known paradigm as a UCGM parameterization.

    Attributes:
        paradigm: E.g. "Diffusion (EDM)".
        transport: The name of the transport of Tab. 2 that realises it.
        consistency_ratio: lambda of Tab. 1.
        order: The sampler order nu of Tab. 1.
        ucgm_form: The UCGM quantity compared (an f^x, in the paradigm's variables).
        paradigm_form: The paradigm's own formula for the same quantity.
        residuals: Named residuals simplify(ours - theirs); all 0 when the row holds.
    """

    paradigm: str
    transport: str
    consistency_ratio: int
    order: int
    ucgm_form: sp.Expr
    paradigm_form: sp.Expr
    residuals: dict[str, sp.Expr]

    @property
    def holds(self) -> bool:
        """Every residual is 0."""
        return all(value == 0 for value in self.residuals.values())


def _edm_in_sigma(sigma: sp.Symbol) -> dict[str, sp.Expr]:
    """Tab. 2's EDM coefficients as functions of the noise level sigma (substituting t(sigma))."""
    tr = symbolic_transport("edm")
    t_of_sigma = (sp.log(sigma) / 4 + sp.Rational(159, 100)) / sp.Rational(67, 25)
    if sp.simplify(EDM_SIGMA.subs(tr.time, t_of_sigma) - sigma) != 0:  # pragma: no cover
        raise AssertionError("t(sigma) does not invert EDM_SIGMA")
    return {k: sp.simplify(v.subs(tr.time, t_of_sigma)) for k, v in tr.coefficients().items()}


def _edm_case() -> SpecialCase:
    sigma = sp.Symbol("sigma", positive=True)
    sigma_data = sp.Rational(1, 2)
    coef = _edm_in_sigma(sigma)
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / sp.sqrt(sigma**2 + sigma_data**2)
    c_in = 1 / sp.sqrt(sigma**2 + sigma_data**2)
    y = sp.Symbol("y", real=True)  # EDM's noisy sample y = x + sigma z; UCGM's x_t = c_in y
    det = sp.simplify(coef["alpha"] * coef["gamma_hat"] - coef["alpha_hat"] * coef["gamma"])
    f_x = (coef["alpha"] * F - coef["alpha_hat"] * c_in * y) / det
    denoiser = c_skip * y + c_out * F
    return SpecialCase(
        paradigm="Diffusion (EDM)",
        transport="EDM",
        consistency_ratio=0,
        order=2,
        ucgm_form=sp.simplify(f_x),
        paradigm_form=denoiser,
        residuals={
            "alpha / gamma - sigma": sp.simplify(coef["alpha"] / coef["gamma"] - sigma),
            "alpha - sigma c_in": sp.simplify(coef["alpha"] - sigma * c_in),
            "gamma - c_in": sp.simplify(coef["gamma"] - c_in),
            "D - 2": sp.simplify(det - 2),
            "f^x - (c_skip y + c_out F)": sp.simplify(f_x - denoiser),
        },
    )


def _ot_case() -> SpecialCase:
    tr = symbolic_transport("linear")
    tau = tr.time
    da, dg = tr.path_velocity()
    return SpecialCase(
        paradigm="Flow matching (OT)",
        transport="Linear",
        consistency_ratio=0,
        order=1,
        ucgm_form=sp.simplify(tr.f_x(F, x_t)),
        paradigm_form=x_t - tau * F,
        residuals={
            "alpha_hat - alpha'": sp.simplify(tr.alpha_hat - da),
            "gamma_hat - gamma'": sp.simplify(tr.gamma_hat - dg),
            "target - d x_t / dt": sp.simplify(
                tr.target(z, x) - sp.diff(tr.interpolate(z, x), tau)
            ),
            "f^x - (x_t - t F)": sp.simplify(tr.f_x(F, x_t) - (x_t - tau * F)),
            "f^z - (x_t + (1 - t) F)": sp.simplify(tr.f_z(F, x_t) - (x_t + (1 - tau) * F)),
        },
    )


def _scm_case() -> SpecialCase:
    tr = symbolic_transport("trigflow")
    angle = sp.Symbol("phi", positive=True)  # sCM's time: the angle phi = pi t / 2 in [0, pi / 2]
    to_angle = {tr.time: 2 * angle / sp.pi}
    f_x = sp.simplify(tr.f_x(F, x_t).subs(to_angle))
    scm = sp.cos(angle) * x_t - sp.sin(angle) * F  # sCM's f(x_t, phi) with sigma_d = 1
    path = tr.interpolate(z, x).subs(to_angle)
    return SpecialCase(
        paradigm="Consistency (sCM)",
        transport="TrigFlow",
        consistency_ratio=1,
        order=1,
        ucgm_form=f_x,
        paradigm_form=scm,
        residuals={
            "f^x - (cos(phi) x_t - sin(phi) F)": sp.simplify(f_x - scm),
            "target - d x_t / d phi": sp.simplify(
                tr.target(z, x).subs(to_angle) - sp.diff(path, angle)
            ),
            "4 alpha / (D sin(pi t / 2)) + 4": sp.simplify(target_factor(tr) + 4),
        },
    )


def special_cases() -> list[SpecialCase]:
    """The three rows of Tab. 1, each checked against the paradigm's own formulas.

    * EDM: x_t = c_in (x + sigma z) with sigma_data = 1/2 gives Tab. 2's alpha, gamma; and
      f^x(F, x_t, t) is EDM's denoiser c_skip (x + sigma z) + c_out F.
    * OT flow matching: alpha_hat = alpha', gamma_hat = gamma'; f^x = x_t - t F.
    * sCM: with the angle phi = pi t / 2, f^x = cos(phi) x_t - sin(phi) F (sCM's consistency
      function, sigma_d = 1), the target is d x_t / d phi, and Alg. 1's factor is -4.

    Returns:
        The list of :class:`SpecialCase`.
    """
    return [_edm_case(), _ot_case(), _scm_case()]


def edm_as_trigflow() -> dict[str, sp.Expr]:
    """EDM with sigma = tan(phi) / 2 is TrigFlow with the data scaled by 1 / sigma_data = 2.

    Returns:
        The four EDM coefficients in the angle phi = arctan(2 sigma): sin(phi), 2 cos(phi),
        -cos(phi), 2 sin(phi); so F = -d x_t / d phi.
    """
    phi = sp.Symbol("phi", positive=True)
    sigma = sp.Symbol("sigma", positive=True)
    out = {}
    for key, in_sigma in _edm_in_sigma(sigma).items():
        # phi in (0, pi / 2), so |cos(phi)| = cos(phi).
        expr = sp.simplify(in_sigma.subs(sigma, sp.tan(phi) / 2))
        out[key] = sp.simplify(expr.subs(sp.Abs(sp.cos(phi)), sp.cos(phi)))
    return out


@dataclass(frozen=True)
class ConstraintReport:
    """Constraints (a), (b), (c) of section 3.1 for one transport.

    Attributes:
        name: The transport's name.
        boundary: Exact alpha(0), alpha(1), gamma(0), gamma(1).
        alpha_nondecreasing: alpha' >= 0 on a grid of [0, 1] (numeric).
        gamma_nonincreasing: gamma' <= 0 on a grid of [0, 1] (numeric).
        D: D(t), simplified.
        D_status: How constraint (c) was decided: "constant", "solveset: no zero in (0, 1)",
            "solveset: zero at ..." or "undecided symbolically (see the plot)".
        D_nonzero: True / False when decided symbolically, None otherwise.
        min_abs_d: min |D(t)| on a grid of the open interval (numeric).
    """

    name: str
    boundary: dict[str, sp.Expr]
    alpha_nondecreasing: bool
    gamma_nonincreasing: bool
    D: sp.Expr
    D_status: str
    D_nonzero: bool | None
    min_abs_d: float


def check_constraints(
    transport: SymbolicTransport | str, grid_size: int = 2001
) -> ConstraintReport:
    """Check constraints (a)-(c) of section 3.1; (c) symbolically where possible.

    Args:
        transport: A transport or a name of Tab. 2.
        grid_size: Grid points for the numeric checks.

    Returns:
        :class:`ConstraintReport`.
    """
    tr = symbolic_transport(transport)
    tau = tr.time
    boundary = {
        "alpha(0)": sp.simplify(tr.alpha.subs(tau, 0)),
        "alpha(1)": sp.simplify(tr.alpha.subs(tau, 1)),
        "gamma(0)": sp.simplify(tr.gamma.subs(tau, 0)),
        "gamma(1)": sp.simplify(tr.gamma.subs(tau, 1)),
    }
    grid = torch.linspace(0.0, 1.0, grid_size, dtype=torch.float64)
    da, dg = tr.path_velocity()
    a_ok = bool((lambdify_torch(da, tau)(grid) >= -1e-12).all())
    g_ok = bool((lambdify_torch(dg, tau)(grid) <= 1e-12).all())
    det = tr.D
    if tau not in det.free_symbols:
        status, nonzero = "constant", bool(det != 0)
    else:
        zeros = sp.solveset(det, tau, sp.Interval.open(0, 1))
        if zeros is sp.S.EmptySet:
            status, nonzero = "solveset: no zero in (0, 1)", True
        elif isinstance(zeros, sp.FiniteSet):
            status, nonzero = f"solveset: zero at {sorted(zeros, key=float)}", False
        else:
            status, nonzero = "undecided symbolically (see the plot)", None
    inner = grid[1:-1]
    min_abs = float(lambdify_torch(det, tau)(inner).abs().min())
    return ConstraintReport(tr.name, boundary, a_ok, g_ok, det, status, nonzero, min_abs)
