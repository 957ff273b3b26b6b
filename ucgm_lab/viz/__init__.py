"""Figures for UCGM experiments (plotly)."""

from .plots_2d import (
    density_heatmap,
    points_figure,
    quality_figure,
    trajectory_animation,
    trajectory_figure,
    x_hat_grid_figure,
)
from .static import LIVE_RENDERER, STATIC_RENDERER, notebook_setup, show, static_images_work

__all__ = [
    "LIVE_RENDERER",
    "STATIC_RENDERER",
    "density_heatmap",
    "notebook_setup",
    "show",
    "static_images_work",
    "points_figure",
    "quality_figure",
    "trajectory_animation",
    "trajectory_figure",
    "x_hat_grid_figure",
]
