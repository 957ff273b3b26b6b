"""ucgm-lab: Unified Continuous Generative Models (UCGM-T and UCGM-S) in PyTorch."""

__version__ = "0.1.0"
