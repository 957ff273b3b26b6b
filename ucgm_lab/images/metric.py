"""Deprecated: moved to :mod:`ucgm_lab.metrics.digits`."""

from .._deprecated import forward_module, warn_moved

warn_moved(__name__, "ucgm_lab.metrics.digits", stacklevel=2)
__getattr__ = forward_module(__name__, "ucgm_lab.metrics.digits")
