"""Where the FID Inception network's weights come from: one definition for every FID helper.

Published FID numbers use the TensorFlow-ported InceptionV3 weights that torch-fidelity loads.
The library never downloads them; :mod:`ucgm_lab.metrics.fid` and ``scale/fid.py`` name this
file and its address in their error messages. This module holds only the two constants, so
that importing them loads nothing else.
"""

from __future__ import annotations

__all__ = ["INCEPTION_WEIGHTS_FILE", "INCEPTION_WEIGHTS_URL"]

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
"""torch-fidelity's InceptionV3 weights (the TF-ported network of published FID numbers)."""

INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)
"""Where to download :data:`INCEPTION_WEIGHTS_FILE` on a machine with network access."""
