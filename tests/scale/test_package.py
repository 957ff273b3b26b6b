"""scale/ as a package: importable, light, runnable as modules and as files."""

import subprocess
import sys

import pytest

from tests.scale.helpers import REPO, subprocess_env

SCRIPTS = ("train", "sample", "extract_latents")


FILE_RUN_GUARD = 'if __package__ in (None, ""):  # run as a file'
"""The one allowed sys.path change: a script run as a file (``accelerate launch scale/train.py``)
puts its own checkout first, so that it never imports an installed ``scale`` (issue 28)."""


def test_no_sys_path_manipulation_in_scale():
    offenders = []
    for p in sorted((REPO / "scale").rglob("*.py")):
        text = p.read_text()
        if "noqa: E402" in text:
            offenders.append(str(p.relative_to(REPO)))
            continue
        if "sys.path" not in text:
            continue
        # only inside the file-run guard, and only there
        guarded = text.split(FILE_RUN_GUARD, 1)
        outside = guarded[0] + (guarded[1].split("\n\n", 1)[1] if len(guarded) == 2 else "")
        if "sys.path" in outside:
            offenders.append(str(p.relative_to(REPO)))
    assert offenders == []


@pytest.mark.parametrize("module", ["scale.fid", "scale.train", "scale.sample"])
def test_scale_imports_no_plot_widget_or_sklearn_module(module):
    code = (
        f"import sys, {module}\n"
        "heavy = ('sklearn', 'matplotlib', 'plotly', 'ipywidgets', 'ucgm_lab.images', "
        "'ucgm_lab.widgets', 'ucgm_lab.viz')\n"
        "print(sorted({m for m in sys.modules for h in heavy if m == h or m.startswith(h + '.')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_inception_constants_have_one_definition():
    import importlib

    from scale import fid as scale_fid
    from ucgm_lab.metrics import inception

    images_fid = importlib.import_module("ucgm_lab.images.fid")  # the package exports fid()

    assert scale_fid.INCEPTION_WEIGHTS_URL is inception.INCEPTION_WEIGHTS_URL
    assert images_fid.INCEPTION_WEIGHTS_FILE is inception.INCEPTION_WEIGHTS_FILE
    assert inception.INCEPTION_WEIGHTS_URL.endswith("/" + inception.INCEPTION_WEIGHTS_FILE)


@pytest.mark.parametrize(
    "command",
    [["-m", "scale.train"], *(["scale/" + s + ".py"] for s in SCRIPTS)],
    ids=["module", *SCRIPTS],
)
def test_scripts_run_as_modules_and_as_files(command):
    """`python -m scale.train` and `python scale/train.py` (with scale installed) both start."""
    out = subprocess.run(
        [sys.executable, *command, "--help"],
        env=subprocess_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "--config" in out.stdout or "--data-dir" in out.stdout
