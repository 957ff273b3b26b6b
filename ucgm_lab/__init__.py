"""ucgm-lab: Unified Continuous Generative Models (UCGM-T and UCGM-S) in PyTorch.

The three mathematical pieces of the paper:

* :mod:`ucgm_lab.transports`: the transports of Tab. 2 and eq. (2) (``get_transport``).
* :mod:`ucgm_lab.objective`: the UCGM-T objective, Alg. 1 (``UCGMObjective``).
* :mod:`ucgm_lab.sampler`: the UCGM-S sampler, Alg. 2 (``sample``).
"""

from .ema import ExponentialMovingAverage
from .loading import SamplingModel, load_for_sampling
from .objective import ObjectiveOutput, UCGMObjective
from .recommended import recommended_settings
from .sampler import SampleOutput, sample
from .schedules import (
    AUTO_KUMARASWAMY,
    SCHEDULES,
    BetaTimeDistribution,
    KumaraswamySchedule,
    get_schedule,
    kumaraswamy,
)
from .search import SamplerSettings, SearchResult, SearchSpace, search_sampler
from .transports import (
    Transport,
    TransportConstraintError,
    TransportConstraintWarning,
    get_transport,
    list_transports,
)

__version__ = "0.1.0"

__all__ = [
    "AUTO_KUMARASWAMY",
    "BetaTimeDistribution",
    "ExponentialMovingAverage",
    "KumaraswamySchedule",
    "ObjectiveOutput",
    "SCHEDULES",
    "SampleOutput",
    "SamplingModel",
    "SamplerSettings",
    "SearchResult",
    "SearchSpace",
    "Transport",
    "TransportConstraintError",
    "TransportConstraintWarning",
    "UCGMObjective",
    "get_schedule",
    "get_transport",
    "kumaraswamy",
    "list_transports",
    "load_for_sampling",
    "recommended_settings",
    "sample",
    "search_sampler",
]
