"""Figures for UCGM experiments (plotly)."""

from .plots_2d import (
    points_figure,
    quality_figure,
    trajectory_animation,
    trajectory_figure,
    x_hat_grid_figure,
)

__all__ = [
    "points_figure",
    "quality_figure",
    "trajectory_animation",
    "trajectory_figure",
    "x_hat_grid_figure",
]
