"""The predict-then-check items of notebooks 06, 10-14, 20 and 30 (see :mod:`.predictions`).

Each item's truth is computed from the outcome the notebook passes in (its own run), never
stored.
"""

from __future__ import annotations

from .predictions import Prediction, pick_lowest, register_prediction, table

__all__: list[str] = []


def _lowest(label: str):
    return lambda outcome: f"The run: {table(outcome, label)}."


register_prediction(
    Prediction(
        "few_step_at_one_nfe",
        "At 1 NFE, which of your models is closer to the data (lower W2)?",
        "06_your_own_ucgm.ipynb",
        ("lambda = 0", "lambda = 1"),
        pick_lowest,
        _lowest("W2 at 1 NFE"),
        (
            "one network evaluation jumps from pure noise to the data estimate f^x in one go.",
            "what does each model's f^x at t ~ 1 return: the posterior mean E[x | x_t] (lambda = 0) "
            "or the end of the probability-flow ODE (lambda = 1)?",
            "the lambda = 0 model returns the posterior mean, which at t ~ 1 is about the mean of "
            "the data (the centre of the circle); the lambda = 1 model maps the noise onto the "
            "data distribution along the ODE.",
        ),
        {
            "lambda = 0": "At t ~ 1 the flow-matching model predicts E[x | x_t], nearly the data "
            "mean: one step lands all samples near the centre.",
            "lambda = 1": "Here the consistency training did not (yet) beat the flow-matching "
            "model at 1 NFE: look at the budget and the learning curves.",
        },
    )
)
