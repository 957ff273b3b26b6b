"""Deprecated: the even grid's time points are :func:`ucgm_lab.schedules.even_time_points`."""

from .._deprecated import warn_moved
from ..schedules import SCHEDULES, even_time_points

warn_moved(__name__, "ucgm_lab.schedules.even_time_points", stacklevel=2)

__all__ = ["EVEN_SCHEDULE", "even_time_points"]

EVEN_SCHEDULE = SCHEDULES["even"]
