"""The predict-then-check items of notebooks 06, 10-14, 20 and 30 (see :mod:`.predictions`).

Each item's truth is computed from the outcome the notebook passes in (its own run), never
stored.
"""

from __future__ import annotations

from .predictions import Prediction, pick_lowest, register_prediction, table

__all__: list[str] = []


def _nearest(choices):
    return lambda outcome: min(choices, key=lambda c: abs(c - float(outcome)))


def _lowest_item(name, title, notebook, choices, label, hints, wrong=None, fmt=".3f"):
    return register_prediction(
        Prediction(
            name,
            title,
            notebook,
            tuple(choices),
            pick_lowest,
            lambda outcome: f"The run: {table(outcome, label, fmt)}.",
            hints,
            wrong or {},
        )
    )


_lowest_item(
    "few_step_at_one_nfe",
    "At 1 NFE, which of your models is closer to the data (lower W2)?",
    "06_your_own_ucgm.ipynb",
    ("lambda = 0", "lambda = 1"),
    "W2 at 1 NFE",
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


# ---------------------------------------------------------------------- 10 transports
register_prediction(
    Prediction(
        "edm_gamma_at_zero",
        "How much of the data is in EDM's x_t at t = 0: gamma(0) = 0, 0.5, 1 or 2?",
        "10_transports.ipynb",
        (0.0, 0.5, 1.0, 2.0),
        _nearest((0.0, 0.5, 1.0, 2.0)),
        lambda outcome: f"The run: EDM's gamma(0) = {float(outcome):.3f}.",
        (
            "EDM does not mix noise and data with weights that sum to one: it scales its input.",
            "EDM's x_t is c_in (x + sigma z) with c_in = 1 / sqrt(sigma^2 + sigma_data^2) and "
            "sigma_data = 1/2 (Tab. 2); what is c_in when sigma -> 0?",
            "at t = 0 sigma is about 0, so gamma(0) = c_in = 1 / sqrt(1/4) = 2: EDM breaks "
            "constraint (b) on purpose.",
        ),
        {
            1.0: "gamma(0) = 1 holds for the transports that start at the data unscaled "
            "(Linear, TrigFlow); EDM scales its input by c_in.",
        },
    )
)

register_prediction(
    Prediction(
        "broken_constraint",
        "Linear with gamma_hat = +1 instead of -1: which constraint breaks?",
        "10_transports.ipynb",
        ("none", "(a)/(b)", "(c)"),
        lambda outcome: outcome,
        lambda outcome: f"The run: constructing the transport reported {outcome!r}.",
        (
            "alpha and gamma are unchanged; only the target's weights changed.",
            "compute D = alpha * gamma_hat - alpha_hat * gamma = t * 1 - 1 * (1 - t).",
            "D = 2t - 1 vanishes at t = 1/2, inside (0, 1): constraint (c) breaks, and eq. (2) "
            "cannot decode F there.",
        ),
        {
            "none": "alpha and gamma still satisfy (a) and (b), but D = 2t - 1 changes sign.",
            "(a)/(b)": "(a) and (b) only concern alpha and gamma, which did not change.",
        },
    )
)

# ---------------------------------------------------------------------- 11 consistency ratio
_lowest_item(
    "best_lambda_at_one_step",
    "At 1 step, which lambda (0, 0.5 or 1) gives the lowest W2?",
    "11_consistency_ratio.ipynb",
    (0.0, 0.5, 1.0),
    "W2 at 1 step",
    (
        "a single step returns the model's data estimate at t ~ 1 directly.",
        "Fig. 2: which model's x^ is already sharp at the first step?",
        "lambda -> 1 trains f^x to map x_t to the end of the ODE (a consistency model), so one "
        "step lands on the data; lambda = 0 returns the posterior mean, a blur near the data "
        "mean.",
    ),
    {0.0: "At t ~ 1 the flow-matching model's estimate is the posterior mean: a blur."},
)

# ---------------------------------------------------------------------- 12 sampler
_lowest_item(
    "best_kappa_at_4_steps",
    "At 4 steps, which kappa gives the multi-step model the lowest W2?",
    "12_sampler.ipynb",
    (0.0, 0.25, 0.5, 0.75, 1.0),
    "W2 at 4 steps",
    (
        "extrapolation corrects for how much the estimates still change between steps.",
        "Fig. 3c: large kappa helps at the fewest steps, mid-range kappa at a few more, and "
        "large kappa overshoots once the steps are many.",
        "at 4 steps the estimates still move, but less than at 2: a mid-range kappa (0.25 to "
        "0.5) corrects without overshooting.",
    ),
    {
        0.0: "Without extrapolation 4 Euler steps leave the discretisation error of a "
        "first-order method; reusing the previous estimate is free.",
        1.0: "kappa = 1 doubles the last change of the estimates: at 4 steps that overshoots.",
    },
)

# ---------------------------------------------------------------------- 13 enhanced target
_lowest_item(
    "guidance_at_4_nfe",
    "At 4 NFE, which option gives the lowest class W2?",
    "13_transports_and_enhanced_target.ipynb",
    ("no guidance", "CFG small w", "CFG w=3", "enhanced target"),
    "class W2 at 4 NFE",
    (
        "CFG spends two network calls per step; the enhanced target spends none at sampling.",
        "at equal NFE CFG gets half the steps; compare the three options of the table at NFE 4.",
        "CFG pays two calls per step (2 steps at 4 NFE) and a large w shrinks the spread of "
        "each class; the zeta > 0 model pays nothing at sampling but is a different network. "
        "Class W2 rewards both accuracy and spread: read the spread column of the table too.",
    ),
    {
        "CFG w=3": "A large w sharpens the classes but shrinks their spread, and at 4 NFE CFG "
        "has only 2 steps.",
    },
)

# ---------------------------------------------------------------------- 14 your own network
_lowest_item(
    "network_scale_at_2_nfe",
    "At 2 NFE, which few-step model is closer to the data: the raw network (1000 t) or the "
    "wrapped one (x 0.03)?",
    "14_your_own_network.ipynb",
    ("raw (1000 t)", "wrapped (x 0.03)"),
    "W2 at 2 NFE",
    (
        "lambda = 1 differentiates the network in t by a central difference of half-width 0.005.",
        "how far does the fastest time feature of 1000 t turn between t - 0.005 and t + 0.005?",
        "10 radians: the raw network's difference quotient is mostly noise (the warning above), "
        "so its few-step target is noisy. With rho = 1 the second evaluation can repair much of "
        "that, so at 2 NFE the gap may be small either way; the 1-NFE column shows the cost.",
    ),
)

# ---------------------------------------------------------------------- 20 plug-and-play
register_prediction(
    Prediction(
        "kappa_order",
        "Does a constant kappa = 0.5 raise the observed order of UCGM-S above 1?",
        "20_plug_and_play_sampler.ipynb",
        ("yes", "no"),
        lambda rate: "yes" if float(rate) > 1.5 else "no",
        lambda rate: f"The run: observed order of kappa 0.5 = {float(rate):.2f}.",
        (
            "the order says how the error shrinks when the NFE doubles.",
            "a constant kappa is a fixed linear combination of the current and previous "
            "estimates: compare it with the Adams-Bashforth weights of notebook 03.",
            "second order needs weights that depend on the step sizes (AB2: 3/2 and -1/2 on "
            "even steps, i.e. kappa = 1/2 on the velocity, not on x^ and z^ separately); "
            "a constant kappa on the estimates lowers the error constant, not the order.",
        ),
        {"yes": "Extrapolating x^ and z^ by a constant kappa is not AB2's velocity step."},
    )
)

# ---------------------------------------------------------------------- 30 images
_lowest_item(
    "digits_one_nfe",
    "At 1 NFE, which digits model scores better (lower digits metric): lambda = 0 or 1?",
    "30_images.ipynb",
    ("lambda=0", "lambda=1"),
    "digits metric at 1 NFE",
    (
        "the 2D lessons (notebooks 06, 11) carry over to images.",
        "one evaluation returns x^ at t ~ 1: the posterior mean (lambda = 0) or the end of the "
        "flow (lambda = 1).",
        "the lambda = 0 model returns the average digit (a grey blur) at 1 NFE; the lambda = 1 "
        "model a sharp digit.",
    ),
    fmt=".1f",
)
_lowest_item(
    "digits_rho_few_step",
    "The lambda = 1 digits model at 4 NFE: rho = 0 or rho = 1?",
    "30_images.ipynb",
    ("rho=0", "rho=1"),
    "digits metric at 4 NFE",
    (
        "a few-step model's estimate is a one-jump estimate at every step.",
        "what does a deterministic step (rho = 0) do with the model's noise estimate z^ "
        "compared with a fresh draw (rho = 1)?",
        "with rho = 0 each step re-applies the one-jump estimate to a state the model was not "
        "trained to see; rho = 1 (= lambda, the paper's recommendation) restarts from fresh "
        "noise at each time.",
    ),
    fmt=".1f",
)
_lowest_item(
    "digits_kappa_multi_step",
    "The lambda = 0 digits model at 4 NFE (rho = 0): which kappa scores best?",
    "30_images.ipynb",
    (0.0, 0.25, 0.5, 1.0),
    "digits metric at 4 NFE, rho = 0",
    (
        "as in notebook 12, extrapolation corrects the estimates' change between steps.",
        "4 steps is few for a multi-step model: its estimates still change a lot.",
        "a mid-range kappa (about 0.5) corrects the most without overshooting.",
    ),
    fmt=".1f",
)
