"""Toy data sets for ucgm-lab: 2D distributions and small images."""
