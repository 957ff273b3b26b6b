import math

from ucgm_lab.exercises import solutions


def test_ucgm_s_step(accepts, rejects):
    accepts("ucgm_s_step", solutions.ucgm_s_step)

    def backwards(x, z, px, pz, kappa, a, g):
        return a * (z - kappa * (z - pz)) + g * (x - kappa * (x - px))

    rejects("ucgm_s_step", backwards, "kappa = 0.3", "transport Linear")

    def alpha_gamma_swapped(x, z, px, pz, kappa, a, g):
        return g * (z + kappa * (z - pz)) + a * (x + kappa * (x - px))

    rejects("ucgm_s_step", alpha_gamma_swapped, "kappa = 0.0")

    def only_x_extrapolated(x, z, px, pz, kappa, a, g):
        return a * z + g * (x + kappa * (x - px))

    rejects("ucgm_s_step", only_x_extrapolated, "kappa = 0.3")


def test_stochastic_step(accepts, rejects):
    accepts("stochastic_step", solutions.stochastic_step)

    def no_square_roots(x, z, eps, rho, a, g):
        return a * ((1 - rho) * z + rho * eps) + g * x

    rejects("stochastic_step", no_square_roots, "rho = 0.25", "transport Linear")

    def swapped(x, z, eps, rho, a, g):
        return a * (math.sqrt(rho) * z + math.sqrt(1 - rho) * eps) + g * x

    rejects("stochastic_step", swapped, "rho = 0.0")


def test_euler_maruyama_rho(accepts, rejects):
    accepts("euler_maruyama_rho", solutions.euler_maruyama_rho)

    def main_text(a_now, a_next, t_now, t_next):  # Alg. 2 line 7 without the square
        return 1.0 if a_next == 0 else min(1.0, 2 * abs(t_now - t_next) * a_now / a_next)

    rejects("euler_maruyama_rho", main_text, "transport Linear", "t_i = 0.9")

    def no_clip(a_now, a_next, t_now, t_next):
        return 2 * abs(t_now - t_next) * a_now / max(a_next, 1e-12) ** 2

    rejects("euler_maruyama_rho", no_clip, "t_i = 0.3")
