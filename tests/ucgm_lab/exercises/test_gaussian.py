import math

from ucgm_lab.exercises import solutions


def test_flow_matching_optimum(accepts, rejects):
    accepts("flow_matching_optimum", solutions.flow_matching_optimum)

    def cos_of_t(mu, t, x_t):
        g = math.cos(t)
        return (1 - g * g) * mu + g * x_t

    rejects("flow_matching_optimum", cos_of_t, "mu = 1.5, t = 0.2")

    def alpha_for_gamma(mu, t, x_t):
        a = math.sin(math.pi * t / 2)
        return (1 - a * a) * mu + a * x_t

    rejects("flow_matching_optimum", alpha_for_gamma, "E[x | x_t]", "expected")


def test_consistency_optimum(accepts, rejects):
    accepts("consistency_optimum", solutions.consistency_optimum)

    def as_printed(mu, t, x_t):  # the formula printed in App. B.1.5
        g = math.cos(math.pi * t / 2)
        return (1 - g) * mu + g * x_t

    rejects("consistency_optimum", as_printed, "consistency optimum, mu = 1.5, t = 0.2")
    rejects("consistency_optimum", solutions.flow_matching_optimum, "expected")
