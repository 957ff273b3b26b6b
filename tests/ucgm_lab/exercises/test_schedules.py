import torch

from ucgm_lab.exercises import solutions


def test_kumaraswamy_grid(accepts, rejects):
    accepts("kumaraswamy_grid", solutions.kumaraswamy_grid)

    def not_flipped(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
        u = torch.linspace(gap_noise, 1 - gap_data, steps, dtype=torch.float64)
        return torch.cat([(1 - (1 - u**a) ** b) ** c, torch.zeros(1, dtype=torch.float64)])

    rejects("kumaraswamy_grid", not_flipped, "(a, b, c) = (1.0, 1.0, 1.0)", "steps = 4")

    def no_final_zero(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
        u = torch.linspace(gap_noise, 1 - gap_data, steps, dtype=torch.float64)
        return 1 - (1 - (1 - u**a) ** b) ** c

    rejects("kumaraswamy_grid", no_final_zero, "expected shape (5,)", "got shape (4,)")

    def exponents_swapped(steps, a, b, c, gap_noise=0.001, gap_data=0.001):
        u = torch.linspace(gap_noise, 1 - gap_data, steps, dtype=torch.float64)
        return torch.cat([1 - (1 - (1 - u**b) ** a) ** c, torch.zeros(1, dtype=torch.float64)])

    rejects("kumaraswamy_grid", exponents_swapped, "(1.17, 0.8, 1.1)")


def test_beta_mode(accepts, rejects):
    accepts("beta_mode", solutions.beta_mode)
    rejects(
        "beta_mode", lambda t1, t2: t1 / (t1 + t2), "Beta(3.0, 1.5)", "expected 0.8, got 0.66667"
    )
    rejects("beta_mode", lambda t1, t2: (t2 - 1) / (t1 + t2 - 2), "Beta(3.0, 1.5)")
    rejects("beta_mode", lambda t1, t2: "half", "expected a number")
