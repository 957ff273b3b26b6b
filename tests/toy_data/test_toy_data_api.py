"""Public API of the installed ``toy_data`` package.

Checked in a subprocess started in the repository root: under pytest's default
import mode ``tests/`` is put on ``sys.path`` (it holds a conftest.py), so inside the
test process ``import toy_data`` can resolve to a namespace package spanning
``tests/toy_data`` and ``toy_data`` that skips ``toy_data/__init__.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "CIFAR10_CLASSES",
    "GaussianMixture2D",
    "ImageDataset",
    "ToySample",
    "class_weights",
    "default_gaussian_mixture",
    "list_2d_datasets",
    "load_cifar10",
    "load_digits_images",
    "num_classes",
    "sample_2d",
    "sample_2d_class",
}

_SCRIPT = """
import json, toy_data
print(json.dumps({
    "file": toy_data.__file__,
    "all": sorted(toy_data.__all__),
    "present": sorted(n for n in toy_data.__all__ if hasattr(toy_data, n)),
    "doc": toy_data.__doc__,
    "names": toy_data.list_2d_datasets(),
    "points": list(toy_data.sample_2d("moons", 3, seed=0).points.shape),
}))
"""


def test_public_api_is_reexported():
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert Path(info["file"]) == REPO_ROOT / "toy_data" / "__init__.py"
    assert set(info["all"]) == EXPECTED
    assert set(info["present"]) == EXPECTED
    assert info["points"] == [3, 2]
    for name in info["names"]:
        assert f'"{name}"' in info["doc"]
    assert "load_digits_images" in info["doc"] and "load_cifar10" in info["doc"]
