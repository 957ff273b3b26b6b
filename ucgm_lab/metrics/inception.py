"""Where FID's InceptionV3 weights come from: torch-fidelity's file name and its download address.

Constants only, so that ``scale/`` and the FID helper can name the file without importing
anything else.
"""

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)
