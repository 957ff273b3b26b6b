"""Neural networks ``F(x_t, t, y=None)`` for UCGM: a 2-D MLP and a small UNet.

All networks follow one convention: ``x_t`` is ``(B, ...)``, ``t`` is a float tensor ``(B,)``
in ``[0, 1]``, ``y`` is ``None`` or int64 ``(B,)`` class ids, and the output has the shape of
``x_t``. Class-conditional networks expose ``num_classes`` and ``null_class`` (``=
num_classes``, used when ``y`` is ``None``). ``model.config`` is a JSON-serialisable dict that
:func:`build_network` turns back into the same architecture.
"""

from ucgm_lab.networks.embeddings import (
    ClassEmbedding,
    SinusoidalTimeEmbedding,
    sinusoidal_embedding,
)
from ucgm_lab.networks.mlp import MLP2D
from ucgm_lab.networks.registry import NETWORK_KINDS, build_network
from ucgm_lab.networks.time_scale import TimeScaled
from ucgm_lab.networks.unet import SmallUNet

__all__ = [
    "MLP2D",
    "NETWORK_KINDS",
    "ClassEmbedding",
    "SinusoidalTimeEmbedding",
    "SmallUNet",
    "TimeScaled",
    "build_network",
    "sinusoidal_embedding",
]
