import json

import pytest
import torch

from ucgm_lab.recipes import CIFAR10_RECIPE, DIGITS_RECIPE, build_image_network, train_images


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


def test_train_gives_the_weights_of_the_former_2d_training():
    """train() on a 2D recipe reproduces the former train_toy: 37.55959294029526 is the sum of
    the EMA weights that the pre-merge ucgm_lab.recipes.train_toy gave for this recipe."""
    from ucgm_lab.recipes import ToyRecipe, train

    recipe = ToyRecipe(
        dataset="8gaussians",
        conditional=True,
        steps=3,
        batch_size=32,
        data_size=128,
        hidden=8,
        depth=1,
    )
    state = train(recipe, progress=False, device="cpu").model.state_dict()
    assert sum(float(v.double().sum()) for v in state.values()) == pytest.approx(
        37.55959294029526, abs=1e-9
    )


def test_train_gives_the_weights_of_the_former_image_training():
    """201.82724324334737: the sum of the EMA weights the pre-merge images.train_images gave."""
    state = train_images(
        DIGITS_RECIPE.with_(steps=2, base_channels=8), progress=False
    ).model.state_dict()
    assert sum(float(v.double().sum()) for v in state.values()) == pytest.approx(
        201.82724324334737, abs=1e-9
    )
