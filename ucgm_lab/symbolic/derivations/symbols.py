"""The SymPy symbols the derivations share, and the residual test ``_is_zero``.

Plain symbols: the algebra of eq. 2 holds pointwise in t.
"""

from __future__ import annotations

import sympy as sp

# Generic coefficients (plain symbols: the algebra of eq. 2 holds pointwise in t).
alpha, gamma, alpha_hat, gamma_hat = sp.symbols("alpha gamma alphahat gammahat", real=True)
x, z, F, x_t = sp.symbols("x z F x_t", real=True)
D_sym = sp.Symbol("D", real=True, nonzero=True)

# Generic coefficient functions of time, for the derivations that differentiate in t.
alpha_fn, gamma_fn = sp.Function("alpha", real=True), sp.Function("gamma", real=True)


def _is_zero(expr: sp.Expr) -> bool:
    return sp.simplify(expr) == 0


# Symbols of the sampler's steps (Alg. 2).
x_tilde, z_hat_sym, x_hat_sym = sp.symbols("xtilde zhat xhat", real=True)
z_hat_next, x_hat_next = sp.symbols("zhatprime xhatprime", real=True)
t_i, t_next = sp.symbols("t_i t_i+1", real=True)
delta_t = sp.Symbol("Delta_t", real=True)
