"""Reading model files: plain JSON (no pickle), checked before anything trusts it.

A model writes itself (``Engine.save``, ``Engine.to_dict``); this module reads any file of
format 1 or 2 back into the class the registry names, without importing any model class
itself (no import cycle). Format-1 files (before the Preprocessor) are upgraded on reading
and give the same labels. A file newer than this fastseg is refused with a clear message.
"""

import json

from ..errors import ModelFileError
from . import registry
from .fileformat import FORMAT, FORMAT_VERSION


def load(path):
    """Read a model file written by ``model.save(path)``; returns a fitted estimator."""
    return _load_as(path, lambda algorithm: algorithm.estimator())


def load_engine(path, *, any_model=False):
    """Read a model file into the engine that predicts with it, without scikit-learn (CLI).

    A k-prototypes model has prototypes of numbers and modes, not centres in one space: only
    commands that say ``any_model`` (predict, profile) take it; the others say so.
    """
    model = _load_as(path, lambda algorithm: algorithm.engine())
    if not any_model and registry.by_tag(model.estimator_name).name == "kprototypes":
        raise ModelFileError(
            f"'{path}' is a k-prototypes model, which fastseg predict, profile and explain "
            "read; this command needs a model with centres (fit one with --algorithm lloyd)"
        )
    return model


def read_model_doc(path):
    """The model file's JSON, upgraded to the current format; errors say what to do."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ModelFileError(f"no such model file: '{path}'") from None
    except IsADirectoryError:
        raise ModelFileError(f"'{path}' is a folder, not a model file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"'{path}' is not a fastseg model file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a fastseg model file")
    version = doc.get("format_version")
    if version not in (1, FORMAT_VERSION):
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelFileError(
            f"'{path}' has model format version {version} (written by fastseg "
            f"{doc.get('fastseg_version')}); this fastseg reads versions 1 to {FORMAT_VERSION}: "
            + ("upgrade fastseg to read it" if newer else "refit the model")
        )
    if version == 1:
        try:
            doc = upgrade_format_1(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise _damaged(path, exc) from None
    return doc


def _load_as(path, class_of):
    doc = read_model_doc(path)
    algorithm = registry.by_tag(doc.get("estimator"))
    try:
        model = class_of(algorithm)(**doc["params"])
        model._validate_params()
        model._restore(doc)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _damaged(path, exc) from None
    return model


def _damaged(path, exc):
    detail = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
    return ModelFileError(f"'{path}' is a damaged fastseg model file: {detail}")


# The preprocessing parameters a format-1 file holds: frozen with that format (not
# PreprocessSettings.names(), which may grow).
SETTINGS = ("derive", "log1p", "missing", "scale", "categorical", "category_weight", "pca")


def upgrade_format_1(doc):
    """A format-1 document as format 2: its scaling, filling, PCA and categories become the
    "preprocessor" object; log1p's column names become feature indices as predict used them."""
    params = doc["params"]
    d = int(doc["n_features_in"])
    names = doc["feature_names"]
    log1p = []
    for item in params.get("log1p") or ():
        log1p.append(names.index(item) if isinstance(item, str) else int(item))
    scaling = doc.get("scaling")
    imputation = doc.get("imputation")
    preprocessor = {
        "settings": {name: params.get(name) for name in SETTINGS},
        "n_features": d,
        "feature_names": names,
        "categories": doc.get("categories"),
        "log1p_columns": sorted(set(log1p)),
        "fill_values": None if imputation is None else imputation["values"],
        "scaling": None
        if scaling is None
        else {"centre": scaling["mean"], "spread": scaling["scale"]},
        "pca": doc.get("pca"),
    }
    if preprocessor["settings"]["missing"] is None:
        preprocessor["settings"]["missing"] = "error"
    if preprocessor["settings"]["scale"] is None:
        preprocessor["settings"]["scale"] = "none"
    upgraded = {k: v for k, v in doc.items() if k not in ("scaling", "imputation", "pca")}
    upgraded.pop("categories", None)
    upgraded["format_version"] = FORMAT_VERSION
    upgraded["preprocessor"] = preprocessor
    return upgraded
