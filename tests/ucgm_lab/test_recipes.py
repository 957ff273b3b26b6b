import json

import pytest
import torch

from ucgm_lab.recipes import (
    CIFAR10_RECIPE,
    DIGITS_RECIPE,
    ToyRecipe,
    build_image_network,
    train,
    train_images,
)


def test_a_few_steps_of_digits_training_and_a_few_step_model_from_it():
    run = train_images(DIGITS_RECIPE.with_(steps=2, batch_size=16), progress=False)
    assert run.result.step == 2 and len(run.result.losses) == 2
    assert not any(p.requires_grad for p in run.model.parameters())
    assert run.model.config["num_classes"] == 10 and run.seconds_per_step > 0
    few = train_images(
        DIGITS_RECIPE.with_(consistency_ratio=1.0, steps=1, batch_size=16),
        init=run.model,
        progress=False,
    )
    assert few.trainer.config.optimizer == "radam" and few.trainer.config.lr == 2e-4
    assert few.trainer.objective.consistency_ratio == 1.0
    assert not any(p.requires_grad for p in run.model.parameters())  # init is copied, not trained


def test_recipes_serialise_and_size_the_network():
    assert json.loads(json.dumps(CIFAR10_RECIPE.to_dict()))["channel_mults"] == [1, 2, 2]
    net = build_image_network(CIFAR10_RECIPE, (3, 32, 32), 10)
    assert net(
        torch.zeros(2, 3, 32, 32), torch.ones(2), torch.zeros(2, dtype=torch.long)
    ).shape == (2, 3, 32, 32)
    assert (
        DIGITS_RECIPE.learning_rate == 2e-3
        and DIGITS_RECIPE.with_(consistency_ratio=0.5).learning_rate == 2e-4
    )


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        train_images(CIFAR10_RECIPE.with_(data_root=str(tmp_path), steps=1), progress=False)
    uncond = build_image_network(DIGITS_RECIPE.with_(conditional=False), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="class-conditional"):
        train_images(DIGITS_RECIPE.with_(steps=1), init=uncond, progress=False)


def test_one_recipe_type_for_both_data_kinds():
    from ucgm_lab.recipes import ImageRecipe, Recipe, ToyRecipe, train, train_toy

    toy, image = ToyRecipe(), ImageRecipe()
    assert isinstance(toy, Recipe) and isinstance(image, Recipe)
    assert (toy.kind, image.kind) == ("points", "images")
    assert toy.learning_rate == 2e-3 and toy.with_(consistency_ratio=1.0).learning_rate == 2e-4
    assert toy.to_dict()["lr"] is None and image.to_dict()["lr"] == 2e-3  # as stored in the zoo
    with pytest.raises(TypeError, match="ToyRecipe or an ImageRecipe"):
        train(Recipe(steps=1))
    run = train_toy(
        ToyRecipe(dataset="moons", steps=2, batch_size=16, data_size=64, hidden=8, depth=1),
        progress=False,
        device="cpu",
    )
    assert (
        run.model.config["hidden"] == 8 and len(run.result.losses) == 2 and run.seconds_per_step > 0
    )


WEIGHT_SUM_TOLERANCE = 1e-4
"""How far the sum of the trained weights may move between CPUs, kernels and thread counts.

Measured spread (torch 2.13) of the two anchors below: an AMD EPYC with 1 or 2 threads and
ATEN_CPU_CAPABILITY=avx512, avx2 or default: up to 1.3e-5 (2D) and 2.6e-5 (images, the
"default" kernels); an Intel Xeon with AVX-512 (issue 23): 4.8e-9 and 2.4e-7. A real change of the
training moves them much further: one more step by 2.6e-3 (2D) and 1.4e-2 (images), another
seed by 30; the tests check that one more step leaves the tolerance)."""

TOY_ANCHOR = ToyRecipe(
    dataset="8gaussians", conditional=True, steps=3, batch_size=32, data_size=128, hidden=8, depth=1
)
IMAGE_ANCHOR = DIGITS_RECIPE.with_(steps=2, base_channels=8, time_scale=1000.0)


def _weight_sum(model: torch.nn.Module) -> float:
    return sum(float(v.double().sum()) for v in model.state_dict().values())


@pytest.mark.reproducibility
def test_train_gives_the_weights_of_the_former_2d_training():
    """train() on a 2D recipe reproduces the former train_toy: 37.5595929 is the sum of the EMA
    weights that the pre-merge ucgm_lab.recipes.train_toy gave for this recipe (to the measured
    spread across machines, kernels and threads, WEIGHT_SUM_TOLERANCE)."""
    first = train(TOY_ANCHOR, progress=False, device="cpu").model
    again = train(TOY_ANCHOR, progress=False, device="cpu").model
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the same process, the same kernels: bit for bit
    assert _weight_sum(first) == pytest.approx(37.5595929, abs=WEIGHT_SUM_TOLERANCE)
    one_more = train(TOY_ANCHOR.with_(steps=4), progress=False, device="cpu").model
    assert abs(_weight_sum(one_more) - _weight_sum(first)) > 10 * WEIGHT_SUM_TOLERANCE


@pytest.mark.reproducibility
def test_train_gives_the_weights_of_the_former_image_training():
    """201.827243: the sum of the EMA weights the pre-merge images.train_images gave (its
    SmallUNet fed 1000 t), to the measured spread WEIGHT_SUM_TOLERANCE."""
    first = train_images(IMAGE_ANCHOR, progress=False).model
    assert first.config["time_scale"] == 1000.0
    assert _weight_sum(first) == pytest.approx(201.827243, abs=WEIGHT_SUM_TOLERANCE)
    one_more = train_images(IMAGE_ANCHOR.with_(steps=3), progress=False).model
    assert abs(_weight_sum(one_more) - _weight_sum(first)) > 10 * WEIGHT_SUM_TOLERANCE


@pytest.mark.reproducibility
def test_image_recipes_feed_the_network_a_smooth_time():
    """The image recipes build their SmallUNet with time scale 30, as the 2D recipes do, so that
    few-step training from them passes ucgm_lab.time_sensitivity; the same weights fed 1000 t
    do not."""
    from ucgm_lab.time_sensitivity import time_sensitivity

    assert DIGITS_RECIPE.time_scale == CIFAR10_RECIPE.time_scale == 30.0
    torch.manual_seed(0)
    smooth = build_image_network(DIGITS_RECIPE, (1, 8, 8), 10)
    torch.nn.init.normal_(smooth.conv_out.weight, std=0.1)  # a new network returns zeros
    fast = build_image_network(DIGITS_RECIPE.with_(time_scale=1000.0), (1, 8, 8), 10)
    fast.load_state_dict(smooth.state_dict())
    assert smooth.config["time_scale"] == 30.0 and fast.config["time_scale"] == 1000.0
    x = torch.randn(64, 1, 8, 8)
    assert not time_sensitivity(smooth, x, "linear").too_fast
    assert time_sensitivity(fast, x, "linear").too_fast
