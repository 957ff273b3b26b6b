"""From SymPy to the numeric library: ``to_numeric(sym_transport) -> Transport``.

The coefficient expressions of a :class:`~ucgm_lab.symbolic.transports.SymbolicTransport`
are compiled with ``sympy.lambdify(..., modules="torch")``, so a transport written once as
SymPy expressions trains (:class:`ucgm_lab.UCGMObjective`) and samples
(:func:`ucgm_lab.sample`) with the very formulas the notebooks derive with.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
import torch
from torch import Tensor

from ucgm_lab.transports import Transport, get_transport

from .transports import SymbolicTransport, symbolic_transport

__all__ = ["coefficient_difference", "lambdify_torch", "to_numeric"]


def lambdify_torch(expr: sp.Expr, time: sp.Symbol) -> Callable[[Tensor], Tensor]:
    """Compile an expression of ``time`` into a torch function shaped like its input.

    ``sympy.lambdify(time, expr, modules="torch")`` returns a plain number for a constant
    expression (alpha_hat = 1); the wrapper broadcasts it to the shape and dtype of ``t``,
    which :class:`ucgm_lab.transports.Transport` requires.

    Args:
        expr: A SymPy expression whose only free symbol is ``time``.
        time: The time symbol.

    Returns:
        A function ``t -> Tensor`` (same shape and floating dtype as ``t``).
    """
    compiled = sp.lambdify(time, _float_constants(sp.sympify(expr)), modules="torch")

    def evaluate(t: Tensor) -> Tensor:
        value = compiled(t)
        if torch.is_tensor(value) and value.shape == t.shape:
            return value
        return torch.zeros_like(t) + value

    evaluate.__doc__ = f"{expr} (compiled from SymPy)"
    return evaluate


def _float_constants(expr: sp.Expr) -> sp.Expr:
    """Replace constant subexpressions (sqrt(2), pi, exp(3)) by 30-digit floats.

    The torch printer maps sqrt, sin, ... to torch functions, which reject Python numbers;
    constants therefore become numbers before printing (correctly rounded to float64).
    """
    return expr.replace(
        lambda e: e.is_number and not e.is_Number and e.is_real,
        lambda e: sp.Float(e.evalf(30), 30),
    )


def to_numeric(sym: SymbolicTransport | str, *, validate: bool = True) -> Transport:
    """Build the numeric :class:`ucgm_lab.transports.Transport` of a symbolic transport.

    Args:
        sym: A :class:`SymbolicTransport` or the name of one of Tab. 2.
        validate: Check the constraints of section 3.1 on a grid (as the core library does).

    Returns:
        A transport whose alpha, gamma, alpha_hat, gamma_hat (and network time) are the
        lambdified SymPy expressions.
    """
    sym = symbolic_transport(sym)
    fns = {key: lambdify_torch(expr, sym.time) for key, expr in sym.coefficients().items()}
    extra = {}
    if sym.model_time != sym.time:
        extra["model_time"] = lambdify_torch(sym.model_time, sym.time)
    return Transport(
        **fns,
        name=sym.name,
        allowed_deviations=sym.allowed_deviations,
        validate=validate,
        **extra,
    )


def coefficient_difference(
    sym: SymbolicTransport | str,
    numeric: Transport | str | None = None,
    grid_size: int = 4097,
) -> dict[str, float]:
    """Largest absolute difference of every coefficient on a grid of [0, 1], in float64.

    Compares the lambdified SymPy expressions with a numeric transport (by default the core
    library's transport of the same name): the "one source of truth" check of the notebooks.

    Args:
        sym: A symbolic transport or a name of Tab. 2.
        numeric: The numeric transport; default ``get_transport(sym.name)``.
        grid_size: Number of grid points.

    Returns:
        ``{"alpha": ..., "gamma": ..., "alpha_hat": ..., "gamma_hat": ..., "model_time": ...}``.
    """
    sym = symbolic_transport(sym)
    numeric = get_transport(sym.name if numeric is None else numeric)
    grid = torch.linspace(0.0, 1.0, grid_size, dtype=torch.float64)
    out: dict[str, float] = {}
    for key, expr in (*sym.coefficients().items(), ("model_time", sym.model_time)):
        ours = lambdify_torch(expr, sym.time)(grid)
        theirs = getattr(numeric, key)(grid)
        out[key] = float((ours - theirs).abs().max())
    return out
