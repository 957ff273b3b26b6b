"""UCGM-S's per-grid tables, made once per grid and kept for the built-in transports.

Everything a :func:`ucgm_lab.sample` call needs that depends only on the grid t_0 > ... > t_P,
the transport and the dtypes and device (not on the noise, the model's weights or the
settings): the times in the state dtype, the coefficients (alpha, gamma, alpha_hat,
gamma_hat, D) at every t_i as Python numbers, the network's time input, the plain loop's
per-step update coefficients and the columns of its vectorised decomposition (eq. 2), and,
on request, the rates (alpha'(t), gamma'(t)) of the velocity form.

Built once per call they cost a few dozen small tensor operations, about as much as the
plain loop's own per-call work; :func:`grid_tables` therefore keeps them in a small bounded
cache (:data:`CACHE_SIZE` entries of at most :data:`MAX_CACHED_POINTS` steps), but only for
the built-in transports of :func:`ucgm_lab.transports.get_transport`, whose coefficient
functions are fixed. A user's :class:`~ucgm_lab.transports.Transport` may compute its
coefficients from state that changes between calls (a callable object's attribute, a global
read by a lambda), which neither its hash nor its equality can see: its tables are built
afresh at every call, as before the cache. The grid is identified by the bytes of its float64
values, so a cached entry is only returned for exactly the same times.

Split out of :mod:`ucgm_lab.sampler`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .sampler_grid import _kumaraswamy_grid
from .sampler_steps import transport_rates
from .transports import Transport, get_transport, list_transports

__all__ = ["CACHE_SIZE", "MAX_CACHED_POINTS", "GridTables", "grid_tables"]

CACHE_SIZE = 128
"""Most grids whose tables :func:`grid_tables` keeps (least recently used ones are dropped)."""

MAX_CACHED_POINTS = 256
"""Grids with more steps are tabulated at every call (their steps outweigh the tables)."""

Coefficient = float | Tensor
"""A coefficient of the vectorised decomposition: a number equal at every step, or a (P,) column."""


@dataclass(frozen=True, eq=False)
class GridTables:
    """The tables of one grid (module docstring); read-only, shared between calls.

    Attributes:
        times: t_0 .. t_P, shape (P + 1,), in the state dtype on the noise's device.
        times_out: The same times as float64 on the CPU (``SampleOutput.times`` is a copy).
        time_list: t_0 .. t_P as Python numbers.
        coef_rows: (alpha, gamma, alpha_hat, gamma_hat, D) at t_0 .. t_P as Python numbers,
            computed in the state dtype (exact values of that dtype).
        network_times: The network's time input ``transport.model_time(t_i)`` mapped in the
            state dtype, then cast to the network's dtype, shape (P + 1,).
        network_time_list: ``model_time(t_i)`` in the state dtype as Python numbers (what
            ``guidance_interval_time="network"`` compares with).
        plain_steps: The plain loop's update x' = c_x x~ + c_F F of step i as (c_x, c_F)
            (:func:`ucgm_lab.sampler_loop._plain_loop`), or None where D(t_i) = 0.
        x_hat_terms, z_hat_terms: (c1, c2, d) of the vectorised decomposition (eq. 2) over
            the steps 0 .. P - 1, x^ = (c1 F - c2 x~) / d and z^ = (c1 x~ - c2 F) / d, with a
            divisor d = -1 already folded into the signs as ``_combine`` folds it; each a
            number (equal at every step) or a (P,) column in the state dtype.
        plain_needs_scratch: Whether some plain step has c_x != 1 (it then needs a buffer
            for c_F F).
    """

    times: Tensor
    times_out: Tensor
    time_list: tuple[float, ...]
    coef_rows: tuple[tuple[float, ...], ...]
    network_times: Tensor
    network_time_list: tuple[float, ...]
    plain_steps: tuple[tuple[float, float] | None, ...]
    x_hat_terms: tuple[Coefficient, Coefficient, Coefficient]
    z_hat_terms: tuple[Coefficient, Coefficient, Coefficient]
    plain_needs_scratch: bool
    _memo: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)

    @property
    def num_points(self) -> int:
        """P, the number of steps (evaluations at order 1)."""
        return len(self.time_list) - 1

    def rates(self, transport: Transport) -> list[tuple[float, float]]:
        """(alpha'(t_i), gamma'(t_i)) at every time (:func:`transport_rates`), made once.

        Args:
            transport: The transport these tables were made for.
        """
        if "rates" not in self._memo:
            self._memo["rates"] = transport_rates(transport, self.times)
        return self._memo["rates"]


def grid_tables(
    transport: Transport,
    grid: Tensor,
    grid_key: tuple | None,
    state_dtype: torch.dtype,
    net_dtype: torch.dtype,
    device: torch.device,
) -> GridTables:
    """The tables of ``grid`` for ``transport``, from the cache for a built-in transport.

    Args:
        transport: The transport.
        grid: The time grid t_0 > ... > t_P = 0, shape (P + 1,), float64 on the CPU
            (:func:`ucgm_lab.sampler_grid.time_grid`); not modified or kept.
        grid_key: A hashable key that determines the grid (equal keys, equal grids), e.g.
            (schedule, points), or None: the grid's float64 bytes are its key.
        state_dtype: The dtype of the sampler's state.
        net_dtype: The dtype the network is called in.
        device: The noise's device.

    Returns:
        The tables (shared with other calls when cached: never modify them).
    """
    if grid.numel() - 1 <= MAX_CACHED_POINTS:
        index = _builtin_index(transport)
        if index is not None:
            key = grid_key if grid_key is not None else grid.detach().cpu().numpy().tobytes()
            return _cached_tables(index, key, state_dtype, net_dtype, device)
    return _build_tables(transport, grid, state_dtype, net_dtype, device)


@functools.lru_cache(maxsize=1)
def _builtin_transports() -> tuple[Transport, ...]:
    """The built-in transport objects (kept alive here, so their identities stay theirs)."""
    return tuple(get_transport(name) for name in list_transports())


def _builtin_index(transport: Transport) -> int | None:
    """The position of ``transport`` among the built-in objects (by identity), or None."""
    for index, builtin in enumerate(_builtin_transports()):
        if transport is builtin:
            return index
    return None


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_tables(
    index: int,
    grid_key: tuple | bytes,
    state_dtype: torch.dtype,
    net_dtype: torch.dtype,
    device: torch.device,
) -> GridTables:
    """:func:`_build_tables` for the built-in transport ``index`` and a grid given by its key.

    The key is (schedule, points) (the grid of :func:`_kumaraswamy_grid`) or the grid's
    float64 bytes; either gives the grid back exactly.
    """
    if isinstance(grid_key, bytes):
        grid = torch.frombuffer(bytearray(grid_key), dtype=torch.float64)
    else:
        grid = _kumaraswamy_grid(*grid_key)
    return _build_tables(_builtin_transports()[index], grid, state_dtype, net_dtype, device)


def _build_tables(
    transport: Transport,
    grid: Tensor,
    state_dtype: torch.dtype,
    net_dtype: torch.dtype,
    device: torch.device,
) -> GridTables:
    """Compute the tables of one grid (the sampler's set-up, as it ran at every call before)."""
    times = grid.to(device=device, dtype=state_dtype)
    if times.data_ptr() == grid.data_ptr():
        times = times.clone()  # never share the caller's tensor
    # the coefficients at every t_i as Python numbers (exact in the state dtype)
    coefs = transport.coefficients(times)
    coef_rows = torch.stack(
        torch.broadcast_tensors(
            *(
                torch.as_tensor(c, dtype=state_dtype, device=times.device)
                for c in (coefs.alpha, coefs.gamma, coefs.alpha_hat, coefs.gamma_hat, coefs.D)
            ),
            times,
        )[:5],
        dim=1,
    ).tolist()
    network_times = transport.model_time(times)  # map in the state dtype, then cast
    num_points = times.numel() - 1
    plain_steps = tuple(_plain_step(coef_rows[i], coef_rows[i + 1]) for i in range(num_points))
    return GridTables(
        times=times,
        times_out=times.to(torch.float64).cpu(),
        time_list=tuple(times.tolist()),
        coef_rows=tuple(tuple(row) for row in coef_rows),
        network_times=network_times.to(net_dtype),
        network_time_list=tuple(network_times.tolist()),
        plain_steps=plain_steps,
        x_hat_terms=_decomposition_terms(coef_rows[:num_points], (0, 2, 4), state_dtype, device),
        z_hat_terms=_decomposition_terms(coef_rows[:num_points], (3, 1, 4), state_dtype, device),
        plain_needs_scratch=any(step is not None and step[0] != 1.0 for step in plain_steps[:-1]),
    )


def _plain_step(row: Sequence[float], row_next: Sequence[float]) -> tuple[float, float] | None:
    """(c_x, c_F) of the plain loop's step from t_i to t_{i+1}, or None where D(t_i) = 0.

    x' = alpha' z^ + gamma' x^ = c_x x~ + c_F F with c_x = (alpha' gamma_hat - gamma'
    alpha_hat) / D and c_F = (gamma' alpha - alpha' gamma) / D (eq. 2 and Alg. 2 line 8;
    primes at t_{i+1}).
    """
    a, g, a_hat, g_hat, d = row
    a_next, g_next = row_next[0], row_next[1]
    if d == 0.0:
        return None
    return (a_next * g_hat - g_next * a_hat) / d, (g_next * a - a_next * g) / d


def _decomposition_terms(
    rows: Sequence[Sequence[float]],
    columns: tuple[int, int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Coefficient, Coefficient, Coefficient]:
    """(c1, c2, d) of ``_combine(c1, first, c2, second, d)`` over the steps, signs folded.

    A coefficient equal at every step stays a number, so that ``_combine`` skips its
    multiplications by +-1 (on Linear alpha_hat = 1, gamma_hat = -1, D = -1: two operations
    per estimate); the others become (P,) columns. A divisor of -1 at every step is folded
    into the signs of c1 and c2 here, as ``_combine`` would fold it (negation is exact), so
    that no column is negated at every call.
    """
    values: list[Coefficient] = []
    for k in columns:
        first = rows[0][k]
        if all(row[k] == first for row in rows):
            values.append(first)
        else:
            values.append(torch.tensor([row[k] for row in rows], dtype=dtype, device=device))
    c1, c2, d = values
    if not isinstance(d, Tensor) and d == -1.0:
        c1, c2, d = -c1, -c2, 1.0
    return c1, c2, d


def view_column(value: Coefficient, ndim: int) -> Coefficient:
    """A (P,) column shaped (P, 1, ..., 1) to broadcast over (P, B, ...) with ``ndim`` data dims."""
    if isinstance(value, Tensor):
        return value.view(value.shape[0], *([1] * ndim))
    return value
