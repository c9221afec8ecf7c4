"""The model file: plain JSON (no pickle) that any fastseg of the same format version can load."""

import json

import numpy as np

from ..errors import ModelFileError
from ..io.output import atomic_output
from ..preprocess.pca import PCA
from ..workflow.segments import label_counts

FORMAT = "fastseg-model"
FORMAT_VERSION = 1


def model_to_dict(model):
    """Everything needed to assign new rows, plus how the model was made and how well it fits."""
    from .. import __version__

    # Settings of how a fit ran (threads, memory, temp folder) are not part of the model: the
    # same data and seed give the same file whatever they were.
    params = {k: v for k, v in model.get_params().items() if k not in model._run_settings}
    if not isinstance(params["init"], str):
        params["init"] = np.asarray(params["init"], dtype=np.float64).tolist()
    params["random_state"] = (
        params["random_state"] if isinstance(params["random_state"], (int, type(None))) else None
    )
    names = getattr(model, "feature_names_in_", None)
    scaling = None
    if model.scale_std_ is not None:
        scaling = {  # rows are mapped to (x - mean) / scale; "mean" is the method's centre
            "method": model.scale,
            "mean": model.scale_mean_.tolist(),
            "scale": model.scale_std_.tolist(),
        }
    sizes = label_counts(model.labels_, model.n_clusters) if hasattr(model, "labels_") else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastseg_version": __version__,
        "estimator": model.estimator_name,
        "params": params,
        "n_features_in": int(model.n_features_in_),
        "feature_names": None if names is None else [str(n) for n in names],
        "dtype": str(model.cluster_centers_.dtype),
        "scaling": scaling,
        "imputation": _imputation(model),
        "pca": _pca(model),
        "categories": getattr(model, "categories_", None),
        "cluster_centers": np.asarray(model.cluster_centers_, dtype=np.float64).tolist(),
        "metrics": {
            "inertia": _maybe(float, getattr(model, "inertia_", None)),
            "n_iter": _maybe(int, getattr(model, "n_iter_", None)),
            "n_rows": int(model.labels_.shape[0]) if sizes is not None else None,
            "n_rows_dropped": int(getattr(model, "n_rows_dropped_", 0)),
            "cluster_sizes": None if sizes is None else sizes.tolist(),
        },
    }


def _imputation(model):
    """What missing feature values are filled with (missing="mean"/"median"), or None."""
    values = getattr(model, "impute_values_", None)
    return None if values is None else {"method": model.missing, "values": values.tolist()}


def _pca(model):
    pca = getattr(model, "pca_", None)
    if pca is None:
        return None
    return {
        "mean": pca.mean.tolist(),
        "components": pca.components.tolist(),
        "explained_variance": pca.explained_variance.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
    }


def _maybe(kind, value):
    return None if value is None else kind(value)


def save_model(model, path, *, overwrite=True):
    """Write ``model`` to ``path`` as JSON, atomically."""
    text = json.dumps(model_to_dict(model), indent=1, allow_nan=False)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "w") as f:
            f.write(text + "\n")


def load(path):
    """Read a model file written by ``model.save(path)``; returns a fitted estimator."""
    from .estimators import KMeans, MiniBatchKMeans

    return _load_as(path, {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans})


def load_engine(path):
    """Read a model file into the engine that predicts with it, without scikit-learn (CLI)."""
    from .lloyd import LloydEngine
    from .minibatch import MiniBatchEngine

    return _load_as(path, {"KMeans": LloydEngine, "MiniBatchKMeans": MiniBatchEngine})


def _load_as(path, classes):
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ModelFileError(f"no such model file: '{path}'") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"'{path}' is not a fastseg model file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a fastseg model file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format version {doc.get('format_version')} (written by fastseg "
            f"{doc.get('fastseg_version')}); this fastseg reads version {FORMAT_VERSION}: "
            "refit the model or use the matching fastseg"
        )
    try:
        model = classes[doc["estimator"]](**doc["params"])
        model._validate_params()
        _restore_fitted_state(model, doc)
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise ModelFileError(f"'{path}' is a damaged fastseg model file: {detail}") from None
    return model


def _restore_fitted_state(model, doc):
    """Set the fitted attributes from the file, checking every one (predict trusts them)."""
    # The engines skip scikit-learn's parameter checks: check those that predict uses.
    if not _positive_int(model.n_clusters):
        raise ValueError(f"n_clusters must be a positive whole number, not {model.n_clusters!r}")
    if model.batch_size is not None and not _positive_int(model.batch_size):
        raise ValueError(f"batch_size must be a positive whole number, not {model.batch_size!r}")
    d = int(doc["n_features_in"])
    if doc["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype {doc['dtype']!r} is not float32 or float64")
    model.pca_ = _restore_pca(doc.get("pca"), d)  # absent from files before PCA
    width = d if model.pca_ is None else model.pca_.components.shape[0]
    centers = _finite_array(doc["cluster_centers"], "cluster_centers")
    if centers.shape != (model.n_clusters, width):
        raise ValueError(
            f"cluster_centers has shape {centers.shape}, expected ({model.n_clusters}, {width})"
        )
    model.cluster_centers_ = centers.astype(doc["dtype"])
    model.n_features_in_ = d
    names = doc["feature_names"]
    if names is not None:
        if len(names) != d or not all(isinstance(n, str) for n in names):
            raise ValueError(f"feature_names must be {d} column names")
        model.feature_names_in_ = np.asarray(names, dtype=object)
    scaling = doc["scaling"]
    model.scale_mean_ = model.scale_std_ = None
    if scaling is not None:
        mean = _finite_array(scaling["mean"], "scaling mean")
        std = _finite_array(scaling["scale"], "scaling scale")
        if mean.shape != (d,) or std.shape != (d,) or (std <= 0).any():
            raise ValueError(f"scaling needs {d} means and {d} positive scales")
        model.scale_mean_, model.scale_std_ = mean, std
    categories = doc.get("categories")  # absent from files of fastseg before one-hot columns
    if categories is not None:
        if not isinstance(categories, dict) or not all(
            isinstance(v, list) and v for v in categories.values()
        ):
            raise ValueError("categories must map each categorical column to its levels")
        model.categories_ = categories
    imputation = doc.get("imputation")  # absent from files of fastseg before imputation
    model.impute_values_ = None
    if imputation is not None:
        model.impute_values_ = _finite_array(imputation["values"], "imputation values")
        if model.impute_values_.shape != (d,):
            raise ValueError(f"imputation needs {d} values")
    metrics = doc["metrics"]
    for attr in ("inertia", "n_iter"):
        if metrics[attr] is not None:
            setattr(model, attr + "_", metrics[attr])
    model.n_rows_dropped_ = int(metrics["n_rows_dropped"])
    model._n_features_out = model.n_clusters


def _restore_pca(doc, d):
    if doc is None:
        return None
    components = _finite_array(doc["components"], "pca components")
    mean = _finite_array(doc["mean"], "pca mean")
    if components.ndim != 2 or components.shape[1] != d or mean.shape != (d,):
        raise ValueError(f"pca needs components of {d} features and {d} means")
    p = components.shape[0]
    variance = _finite_array(doc["explained_variance"], "pca explained_variance")
    ratio = _finite_array(doc["explained_variance_ratio"], "pca explained_variance_ratio")
    if variance.shape != (p,) or ratio.shape != (p,):
        raise ValueError(f"pca needs {p} explained variances")
    return PCA(mean, components, variance, ratio)


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite_array(values, what):
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds non-finite values")
    return array
