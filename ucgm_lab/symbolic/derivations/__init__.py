"""The derivations behind UCGM-T and UCGM-S, done by SymPy (sections 3.1-3.2, App. B.1).

Every function returns a small frozen dataclass of SymPy expressions: what was derived, and
the residuals ``simplify(result - expected)`` that prove (residual 0) or refute (residual not
0) a statement of the paper. The notebooks display these fields; the tests check them.

Training (UCGM-T):

* :func:`derive_prediction_functions`: solve x_t = alpha z + gamma x, F = alpha_hat z +
  gamma_hat x for (x, z): eq. (2).
* :func:`objective_weight_equivalence`: objectives (1) and (3) and the weight omega_hat.
* :func:`lambda_zero_target`: at lambda = 0 the target is alpha_hat z + gamma_hat x (B.1.3).
* :func:`flow_matching_check`: is a transport flow matching (alpha_hat = alpha', ...)?
* :func:`finite_difference_limit`, :func:`finite_difference_errors`: the lambda -> 1
  difference tends to d f^x / dt (App. B.1.2); first- against second-order differences.
* :func:`target_factor`: the factor 4 alpha / (D sin(pi t / 2)) of Alg. 1 line 15.

Sampling (UCGM-S):

* :func:`euler_reduction`: rho = kappa = 0 is Euler for flow-matching transports (B.1.6).
* :func:`second_order_correction`: the correction of Alg. 2 line 11 (docs/paper-notes.md, E1).
* :func:`adams_bashforth_check`: extrapolation with kappa = 1/2 and two-step Adams-Bashforth.
* :func:`stochastic_ratio`: rho from Euler-Maruyama (B.1.6; docs/paper-notes.md, E3).
* :func:`pf_ode_derivation`, :func:`tweedie_gaussian_check`: the PF-ODE of App. B.1.3.

The derivations live in :mod:`.training` (UCGM-T) and :mod:`.sampling` (UCGM-S), their shared
symbols in :mod:`.symbols`; every name is importable from here as before.
"""

from __future__ import annotations

from .sampling import (
    AdamsBashforthCheck,
    EulerReduction,
    PFODEDerivation,
    SecondOrderCorrection,
    StochasticRatio,
    TweedieCheck,
    adams_bashforth_check,
    euler_reduction,
    pf_ode_derivation,
    second_order_correction,
    stochastic_ratio,
    tweedie_gaussian_check,
)
from .symbols import D_sym as D_sym
from .symbols import F as F
from .symbols import alpha as alpha
from .symbols import alpha_fn as alpha_fn
from .symbols import alpha_hat as alpha_hat
from .symbols import delta_t as delta_t
from .symbols import gamma as gamma
from .symbols import gamma_fn as gamma_fn
from .symbols import gamma_hat as gamma_hat
from .symbols import t_i as t_i
from .symbols import t_next as t_next
from .symbols import x as x
from .symbols import x_hat_next as x_hat_next
from .symbols import x_hat_sym as x_hat_sym
from .symbols import x_t as x_t
from .symbols import x_tilde as x_tilde
from .symbols import z as z
from .symbols import z_hat_next as z_hat_next
from .symbols import z_hat_sym as z_hat_sym
from .training import (
    FiniteDifferenceError,
    FiniteDifferenceLimit,
    FlowMatchingCheck,
    LambdaZeroTarget,
    PredictionFunctions,
    WeightEquivalence,
    derive_prediction_functions,
    finite_difference_errors,
    finite_difference_limit,
    flow_matching_check,
    lambda_zero_target,
    objective_weight_equivalence,
    target_factor,
)

__all__ = [
    "AdamsBashforthCheck",
    "EulerReduction",
    "FiniteDifferenceError",
    "FiniteDifferenceLimit",
    "FlowMatchingCheck",
    "LambdaZeroTarget",
    "PFODEDerivation",
    "PredictionFunctions",
    "SecondOrderCorrection",
    "StochasticRatio",
    "TweedieCheck",
    "WeightEquivalence",
    "adams_bashforth_check",
    "derive_prediction_functions",
    "euler_reduction",
    "finite_difference_errors",
    "finite_difference_limit",
    "flow_matching_check",
    "lambda_zero_target",
    "objective_weight_equivalence",
    "pf_ode_derivation",
    "second_order_correction",
    "stochastic_ratio",
    "target_factor",
    "tweedie_gaussian_check",
]
