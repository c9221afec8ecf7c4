"""``fastseg.Ward``: the two-stage Ward engine (``cluster.ward``) with scikit-learn's API."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .estimators import ScikitLearnAPI
from .ward import WardEngine


class Ward(ScikitLearnAPI, WardEngine):
    """Ward's hierarchical clustering on data of any size, in two stages: k-means to
    ``n_micro`` micro-clusters (default 1,000) on a uniform sample, size-weighted Ward on
    their centres, then ``max_iter`` k-means passes over every row (default 1). Parameters
    otherwise as :class:`fastseg.KMeans` (``init`` is "ward"); ``labels_``,
    ``cluster_centers_``, ``inertia_``, ``predict`` and the model file as there."""

    _parameter_constraints = {
        **ScikitLearnAPI._parameter_constraints,
        "init": [StrOptions({"ward"})],
        "n_micro": [Interval(Integral, 2, None, closed="left")],
        "algorithm": [StrOptions({"auto", "lloyd", "hamerly"})],
    }
    _auto_n_init_random = 1
