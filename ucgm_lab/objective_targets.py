"""UCGM-T's target pieces: label dropout, the enhanced pair x*, z*, the finite difference Delta f^x.

:class:`ObjectiveTargets` is a mixin of :class:`~ucgm_lab.objective.UCGMObjective` (Alg. 1
lines 4-14): the enhanced target (lines 4-7, section 3.1, App. B.1.4) and the finite
difference of the data estimate along the transport (eq. 6, lines 8-14) for lambda = 0,
0 < lambda < 1 and lambda = 1. The teachers and the no-grad forwards it calls come from
:class:`~ucgm_lab.objective_teachers.ObjectiveTeachers`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model_api import Model, resolve_null_class
from .objective_teachers import ObjectiveTeachers
from .objective_terms import enhance
from .transports import Coefficients, broadcast_time

__all__ = ["ObjectiveTargets"]


class ObjectiveTargets(ObjectiveTeachers):
    """Target pieces of :class:`~ucgm_lab.objective.UCGMObjective` (a mixin; no state of its own)."""

    epsilon: float
    enhancement_range: tuple[float, float]
    label_dropout: float
    null_class: int | None

    def _drop_labels(
        self,
        model: Model,
        y: Tensor | None,
        batch: int,
        device: torch.device,
        generator: torch.Generator | None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """Label dropout by a random mask (never by slicing). Returns (labels, kept mask)."""
        if y is None:
            return None, None
        y = y.to(device=device, dtype=torch.long)
        if self.label_dropout == 0 and self.enhancement_ratio == 0:
            return y, torch.ones(batch, dtype=torch.bool, device=device)
        null = resolve_null_class(model, self.null_class)
        if null is None:
            raise ValueError(
                "Label dropout and the enhanced target need the null class id: pass "
                "null_class=... to UCGMObjective or give the model a `null_class` attribute "
                "(set label_dropout=0 to train without dropout)."
            )
        drop = torch.rand(batch, generator=generator, device=device) < self.label_dropout
        return torch.where(drop, torch.full_like(y, null), y), ~drop

    def _enhanced_pair(
        self,
        model: Model,
        x: Tensor,
        z: Tensor,
        x_t: Tensor,
        F_sg: Tensor,
        t: Tensor,
        t_b: Tensor,
        c_t: Coefficients,
        labels: Tensor | None,
        kept: Tensor | None,
        update_teachers: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """x*, z* of Alg. 1 lines 4-7 (the enhanced target), or (x, z) when zeta = 0."""
        if self.enhancement_ratio == 0 and not self.uses_ema_teacher:
            return x, z
        self._ensure_teachers(model)
        if self.ema_teacher is not None and (update_teachers or self.ema_teacher.num_updates == 0):
            self.ema_teacher.update(model)  # reference order: update, then use (paper-notes R6)
        if self.enhancement_ratio == 0:
            return x, z
        assert labels is not None and kept is not None
        lo, s = self.enhancement_range
        in_range = (t >= lo) & (t <= s)
        mask = broadcast_time(kept & in_range, x)
        dtype = x.dtype
        if self.consistency_ratio == 0:
            # Unconditional pass through the warm-up EMA teacher (Alg. 1 line 6).
            assert self.ema_teacher is not None
            null = torch.full_like(labels, resolve_null_class(model, self.null_class))
            F_null = self._forward(self.ema_teacher.model, x_t, t, null, dtype)
            cond = self.transport.decompose(F_sg, x_t, t_b)
            uncond = self.transport.decompose(F_null, x_t, t_b)
            dropped = broadcast_time(~kept, x)
            # Samples whose label was dropped: halfway towards the unconditional estimate
            # (reference implementation; the paper does not say).
            x_star = enhance(x, cond.x_hat, uncond.x_hat, self.enhancement_ratio, mask)
            z_star = enhance(z, cond.z_hat, uncond.z_hat, self.enhancement_ratio, mask)
            x_star = torch.where(dropped, 0.5 * (x + uncond.x_hat), x_star)
            z_star = torch.where(dropped, 0.5 * (z + uncond.z_hat), z_star)
            return x_star, z_star
        # lambda > 0: one pass of the frozen multi-step teacher (docs/paper-notes.md, R3).
        assert self.frozen_teacher is not None
        F_teacher = self._forward(self.frozen_teacher, x_t, t, labels, dtype)
        est = self.transport.decompose(F_teacher, x_t, t_b)
        x_star = enhance(x, est.x_hat, x, self.enhancement_ratio, mask)
        z_star = enhance(z, est.z_hat, z, self.enhancement_ratio, mask)
        return x_star, z_star

    def _finite_difference(
        self,
        model: Model,
        x: Tensor,
        z: Tensor,
        x_star: Tensor,
        z_star: Tensor,
        F_sg: Tensor,
        t: Tensor,
        t_b: Tensor,
        c_t: Coefficients,
        D_t: Tensor,
        labels: Tensor | None,
    ) -> Tensor:
        """Delta f^x_t of eq. (6) / Alg. 1 lines 8-14 (before clipping); ``D_t`` is ``c_t.D``."""
        lam = self.consistency_ratio
        tr = self.transport
        if lam == 0:
            # (f^x(sg F_t, x*_t, t) - x*) / t, written as alpha (F - alpha_hat z* - gamma_hat x*) / (D t):
            # the same number without subtracting two nearly equal terms (identity tested).
            target_star = c_t.alpha_hat * z_star + c_t.gamma_hat * x_star
            return c_t.alpha * (F_sg - target_star) / (D_t * t_b)
        net = self._difference_net(model)
        if lam < 1:
            r = lam * t
            r_b = broadcast_time(r, x)
            c_r = tr.coefficients(r_b)
            x_r = c_r.alpha * z + c_r.gamma * x
            F_r = self._forward(net, x_r, r, labels, x.dtype)
            x_star_t = c_t.alpha * z_star + c_t.gamma * x_star
            x_star_r = c_r.alpha * z_star + c_r.gamma * x_star
            inv = 1 / (t_b - r_b)
            return tr.predict_x(F_sg, x_star_t, t_b) * inv - tr.predict_x(F_r, x_star_r, r_b) * inv
        eps = self.epsilon
        t_pm = torch.cat([t + eps, t - eps])
        x2, z2 = torch.cat([x, x]), torch.cat([z, z])
        t_pm_b = broadcast_time(t_pm, x2)
        c_pm = tr.coefficients(t_pm_b)
        x_pm = c_pm.alpha * z2 + c_pm.gamma * x2
        labels2 = None if labels is None else torch.cat([labels, labels])
        F_pm = self._forward(net, x_pm, t_pm, labels2, x.dtype)
        x_star_pm = c_pm.alpha * torch.cat([z_star, z_star]) + c_pm.gamma * torch.cat(
            [x_star, x_star]
        )
        f_pm = tr.predict_x(F_pm, x_star_pm, t_pm_b) * (1 / (2 * eps))
        f_plus, f_minus = f_pm.chunk(2)
        return f_plus - f_minus
