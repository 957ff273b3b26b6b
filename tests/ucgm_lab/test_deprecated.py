"""The one deprecation path of every moved public name: the old path works and warns."""

import importlib
import sys

import pytest


def _fresh(module: str):
    sys.modules.pop(module, None)
    return importlib.import_module(module)


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("ucgm_lab.images.data", "ucgm_lab.data", "load_image_data"),
        ("ucgm_lab.images.classifier", "ucgm_lab.metrics.digits_classifier", "DigitsClassifier"),
        ("ucgm_lab.images.metric", "ucgm_lab.metrics.digits", "DigitsFrechet"),
        ("ucgm_lab.images.fid", "ucgm_lab.metrics.fid", "fid"),
        ("ucgm_lab.images.plots", "ucgm_lab.viz.images", "tile_images"),
        ("ucgm_lab.images.widgets", "ucgm_lab.widgets.images", "KappaRhoExplorer"),
        ("ucgm_lab.images.recipes", "ucgm_lab.recipes", "ImageRecipe"),
        ("ucgm_lab.images.timegrid", "ucgm_lab.schedules", "even_time_points"),
        ("ucgm_lab.images.zoo", "ucgm_lab.zoo", "load_image_model"),
        ("ucgm_lab.adapters.peers", "ucgm_lab.peers", "compare_samplers"),
        ("ucgm_lab.adapters.peers", "ucgm_lab.viz.quality", "plot_quality_vs_nfe"),
    ],
)
def test_old_module_warns_on_import_and_forwards(old, new, name):
    where = "ucgm_lab.peers" if old == "ucgm_lab.adapters.peers" else new
    with pytest.deprecated_call(match=where.replace(".", r"\.")):
        module = _fresh(old)
    target = {"load_image_model": "load"}.get(name, name)
    assert getattr(module, name) is getattr(importlib.import_module(new), target)


def test_old_package_names_warn_on_use():
    import ucgm_lab.images as im
    from ucgm_lab.recipes import train_images
    from ucgm_lab.zoo import ZooModel, load

    for old, new in [
        ("load_image_model", load),
        ("ImageZooModel", ZooModel),
        ("train_images", train_images),
    ]:
        with pytest.deprecated_call(match=f"ucgm_lab.images.{old} is deprecated"):
            assert getattr(im, old) is new
    with pytest.raises(AttributeError):
        im.nothing_like_this  # noqa: B018


def test_moved_widget_helpers_warn():
    import ucgm_lab.widgets as widgets
    from ucgm_lab.evaluation import guidance_sweep
    from ucgm_lab.metrics.classes import balanced_labels

    with pytest.deprecated_call(match="ucgm_lab.evaluation.guidance_sweep"):
        assert widgets.guidance_sweep is guidance_sweep
    with pytest.deprecated_call(match="ucgm_lab.metrics.classes.balanced_labels"):
        assert widgets.balanced_labels is balanced_labels


def test_old_image_evaluation_and_zoo_helpers_still_answer():
    with pytest.deprecated_call():
        ev = _fresh("ucgm_lab.images.evaluation")
        zoo = _fresh("ucgm_lab.images.zoo")
    assert ev.METRIC_NAME == "digits_fd"
    assert ev.format_quality_table([]).startswith("| curve |")
    assert zoo.available() == [
        "digits-linear-lam0",
        "digits-linear-lam0.5",
        "digits-linear-lam1",
        "digits-classifier",
    ]
    assert [s.name for s in zoo.IMAGE_ZOO_SPECS] == [
        "digits-linear-lam0",
        "digits-linear-lam0.5",
        "digits-linear-lam1",
    ]


def test_old_peer_point_and_table_keep_their_signatures():
    with pytest.deprecated_call():
        old = _fresh("ucgm_lab.adapters.peers")
    from ucgm_lab.evaluation import QualityPoint

    p = old.QualityPoint("torchcfm", "UCGM-S k=0.5 o2", "ucgm", 3, 0.25, "steps=3", 0.5, 2, "data")
    assert isinstance(p, QualityPoint)
    assert (p.model, p.sampler, p.family, p.nfe, p.score, p.setting) == (
        "torchcfm",
        "UCGM-S k=0.5 o2",
        "ucgm",
        3,
        0.25,
        "steps=3",
    )
    assert (p.kappa, p.order, p.correction) == (0.5, 2, "data")
    q = old.QualityPoint("torchcfm", "peer dopri5", "peer", 14, 0.5, "tol=0.001")
    assert q.steps is None and q.setting == "tol=0.001" and q.kappa is None
    table = old.format_quality_table([p, q])
    assert table.splitlines()[0] == "| curve | NFE 3 |"
    assert "| torchcfm / UCGM-S k=0.5 o2 | 0.2500 |" in table
