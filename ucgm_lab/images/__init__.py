"""Deprecated: the image lessons are part of the one lesson layer.

=====================================  ==================================================
old ``ucgm_lab.images`` name           new place
=====================================  ==================================================
``load_image_data``, ``find_cifar10``  :mod:`ucgm_lab.data`
``ImageRecipe``, ``train_images``      :mod:`ucgm_lab.recipes` (``train``)
``load_image_model``, ``build``        :mod:`ucgm_lab.zoo` (``load``, ``ZooModel.sample``)
``DigitsClassifier``, ``DigitsFrechet`` :mod:`ucgm_lab.metrics.digits_classifier`, :mod:`ucgm_lab.metrics.digits`
``fid``                                :mod:`ucgm_lab.metrics.fid`
``image_quality_vs_nfe``               :func:`ucgm_lab.evaluation.quality_vs_nfe`
``image_grid_figure`` ...              :mod:`ucgm_lab.viz.images`
``KappaRhoExplorer`` ...               :mod:`ucgm_lab.widgets.images`
``even_time_points``                   :func:`ucgm_lab.schedules.even_time_points`
=====================================  ==================================================

Each old name still works and warns (``DeprecationWarning``).
"""

from .._deprecated import forward_names

_NEW = {
    "CIFAR10_RECIPE": "ucgm_lab.recipes:CIFAR10_RECIPE",
    "DIGITS_RECIPE": "ucgm_lab.recipes:DIGITS_RECIPE",
    "ImageRecipe": "ucgm_lab.recipes:ImageRecipe",
    "ImageRun": "ucgm_lab.recipes:TrainRun",
    "train_images": "ucgm_lab.recipes:train_images",
    "CLASSIFIER_NAME": "ucgm_lab.zoo:CLASSIFIER_NAME",
    "IMAGE_ZOO_DIR": "ucgm_lab.zoo:DIGITS_DIR",
    "IMAGE_ZOO_SPECS": "ucgm_lab.images.zoo:IMAGE_ZOO_SPECS",
    "ImageZooModel": "ucgm_lab.zoo:ZooModel",
    "ImageZooSpec": "ucgm_lab.zoo:ZooSpec",
    "available": "ucgm_lab.images.zoo:available",
    "build": "ucgm_lab.images.zoo:build",
    "load_classifier": "ucgm_lab.zoo:load_classifier",
    "load_image_model": "ucgm_lab.zoo:load",
    "DigitsClassifier": "ucgm_lab.metrics.digits_classifier:DigitsClassifier",
    "train_digits_classifier": "ucgm_lab.metrics.digits_classifier:train_digits_classifier",
    "DigitsFrechet": "ucgm_lab.metrics.digits:DigitsFrechet",
    "digits_frechet": "ucgm_lab.metrics.digits:digits_frechet",
    "INCEPTION_WEIGHTS_FILE": "ucgm_lab.metrics.inception:INCEPTION_WEIGHTS_FILE",
    "fid": "ucgm_lab.metrics.fid:fid",
    "cifar10_instructions": "ucgm_lab.data:cifar10_instructions",
    "find_cifar10": "ucgm_lab.data:find_cifar10",
    "load_image_data": "ucgm_lab.data:load_image_data",
    "METRIC_NAME": "ucgm_lab.evaluation:DIGITS_METRIC",
    "format_quality_table": "ucgm_lab.images.evaluation:format_quality_table",
    "image_quality_vs_nfe": "ucgm_lab.images.evaluation:image_quality_vs_nfe",
    "image_grid_figure": "ucgm_lab.viz.images:image_grid_figure",
    "image_table_figure": "ucgm_lab.viz.images:image_table_figure",
    "tile_images": "ucgm_lab.viz.images:tile_images",
    "x_hat_grid_figure": "ucgm_lab.viz.images:x_hat_grid_figure",
    "KappaRhoExplorer": "ucgm_lab.widgets.images:KappaRhoExplorer",
    "TrajectoryCache": "ucgm_lab.widgets.images:TrajectoryCache",
    "cache_trajectories": "ucgm_lab.widgets.images:cache_trajectories",
    "even_time_points": "ucgm_lab.schedules:even_time_points",
}
__all__ = sorted(_NEW)
__getattr__ = forward_names(__name__, _NEW)
