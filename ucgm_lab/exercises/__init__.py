"""The exercise track: small functions the learner writes in the notebooks, checked here.

Each exercise is a marked notebook cell with a stub ``my_<name>`` that raises
``NotImplementedError`` (its own name, so that re-running any cell in any order never shadows a
library function); the learner replaces it and runs ``check_<name>(my_<name>)``. The check tries
several inputs against an independent computation and, when an answer is wrong, raises
:class:`ExerciseError` saying which case (transport, t, ...) failed, the expected and the
received value, and the first hint. An answer that calls the library's own implementation of the
same thing is refused (:mod:`.guard`). Tensors, NumPy and SymPy numbers are accepted; float32
answers are judged at float32 precision (:mod:`.values`).

Hints come in tiers: ``hint(name, 1)`` the idea, ``hint(name, 2)`` where to start,
``hint(name, 3)`` the formula; ``show_solution(name)`` prints the reference. ``progress()`` lists
what is done and what is next. ``answer(name, my_fn)`` hands a passing answer to the cells that
build on it (notebook 06 trains and samples with the learner's own functions).

Running the notebooks with the solutions filled in (CI): set ``UCGM_LAB_SOLUTIONS=1`` (test
mode, ``UCGM_LAB_TEST_MODE=1``, implies it). A stub that still raises NotImplementedError is then
replaced by the reference solution, which is checked instead, and the check says so. An answer
the learner gave is always the one checked.

=========================  =================================  ===================================
exercise                   what to write                      notebook
=========================  =================================  ===================================
prediction_functions       f^x, f^z of eq. (2)                01
solve_eq2                  eq. (2) with ``sympy.solve``       01
flow_matching_target       the lambda = 0 target              01
target_factor              4 alpha / (D sin(pi t / 2))        01
alg1_target                F_target of Alg. 1, lambda > 0     01
constraint_violations      constraints (a)-(c) of sec. 3.1    02
epsilon_to_velocity        epsilon model -> Linear F          02
ucgm_s_step                one step with kappa (Alg. 2)       03
stochastic_step            the step with rho (Alg. 2 l. 8)    03
euler_maruyama_rho         rho of App. B.1.6                  03
kumaraswamy_grid           the sampling grid (B.2.2)          04
beta_mode                  mode of Beta(theta1, theta2)       04
flow_matching_optimum      E[x | x_t], App. B.1.5             05
consistency_optimum        the lambda -> 1 optimum, B.1.5     05
meanflow_target            MeanFlow's target by a JVP          15
=========================  =================================  ===================================

Notebook 06 reuses five of them (``ex.answer``) to train and sample the learner's own UCGM. The
explorers (06, 10-14, 20, 30) add predict-then-check items (:mod:`.explorer_items`):
``predict(name, my_guess)`` before the run, ``check_prediction(name, outcome)`` after it.

Importing this package is cheap: SymPy is imported only by the ``solve_eq2`` check.
"""

from . import (  # noqa: F401 - registration
    explorer_items,
    flow_maps,
    gaussian,
    objective,
    sampler,
    schedules,
    transports,
)
from .core import (
    SOLUTIONS_ENV,
    CheckResult,
    Exercise,
    ExerciseError,
    answer,
    check,
    get_exercise,
    hint,
    list_exercises,
    progress,
    show_solution,
    solutions_mode,
)
from .flow_maps import check_meanflow_target
from .gaussian import check_consistency_optimum, check_flow_matching_optimum
from .objective import (
    check_alg1_target,
    check_flow_matching_target,
    check_prediction_functions,
    check_solve_eq2,
    check_target_factor,
)
from .predictions import check_prediction, list_predictions, predict
from .sampler import check_euler_maruyama_rho, check_stochastic_step, check_ucgm_s_step
from .schedules import check_beta_mode, check_kumaraswamy_grid
from .transports import CONSTRAINT_NAMES, check_constraint_violations, check_epsilon_to_velocity

__all__ = [
    "CONSTRAINT_NAMES",
    "SOLUTIONS_ENV",
    "CheckResult",
    "Exercise",
    "ExerciseError",
    "answer",
    "check",
    "check_alg1_target",
    "check_beta_mode",
    "check_consistency_optimum",
    "check_constraint_violations",
    "check_epsilon_to_velocity",
    "check_euler_maruyama_rho",
    "check_flow_matching_optimum",
    "check_flow_matching_target",
    "check_kumaraswamy_grid",
    "check_meanflow_target",
    "check_prediction_functions",
    "check_solve_eq2",
    "check_stochastic_step",
    "check_target_factor",
    "check_prediction",
    "check_ucgm_s_step",
    "get_exercise",
    "hint",
    "list_exercises",
    "list_predictions",
    "predict",
    "progress",
    "show_solution",
    "solutions_mode",
]
