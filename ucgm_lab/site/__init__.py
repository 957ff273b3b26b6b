"""The static site of the notebooks, with kernel-free explorers (``python -m ucgm_lab.site``).

* :mod:`~ucgm_lab.site.explorers`: which live explorer each kernel-free explorer mirrors,
  built how, over which grid of control values.
* :mod:`~ucgm_lab.site.build`: the notebooks as pages (nbconvert), the explorers' pages and
  the landing page.
* :mod:`~ucgm_lab.site.mathjax`: the site's own copy of MathJax (formulas typeset offline).
"""

from .build import BuildReport, build_site
from .explorers import TWINS, TwinSpec, build_twin, make_explorer

__all__ = ["TWINS", "BuildReport", "TwinSpec", "build_site", "build_twin", "make_explorer"]
