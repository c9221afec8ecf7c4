"""The model file's envelope: the format's name and version, shared by saving (the models)
and loading (``modelfile``) so neither imports the other, and how every model writes its file
(``SavedModel``)."""

import json
from numbers import Integral

from .._version import __version__
from ..io.output import atomic_output

FORMAT = "fastseg-model"
# 2: the preprocessing is one "preprocessor" object (format 1 had "scaling", "imputation",
# "pca" and "categories" beside the centres; such files still load).
FORMAT_VERSION = 2


class SavedModel:
    """Writing a model file, the same for every model: a subclass gives ``estimator_name``,
    ``_run_settings``, ``get_params``, ``_check_fitted`` and ``to_dict``, which starts from
    ``_envelope``."""

    def save(self, path, *, overwrite=True):
        """Write the fitted model as JSON, atomically (``fastseg.load`` reads it back)."""
        text = self.to_json()
        with atomic_output(path, overwrite=overwrite) as tmp:
            with open(tmp, "w") as f:
                f.write(text)
        return self

    def to_json(self):
        """The model file's text (what ``save`` writes)."""
        self._check_fitted()
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def _envelope(self):
        """What every model file begins with: the format, the fastseg that wrote it, the
        estimator and its parameters. Settings of how a fit ran (threads, memory, temporary
        folder, batch size) are left out: the same data and seed give the same file whatever
        they were; a random state that is not a number is not kept."""
        params = {k: v for k, v in self.get_params().items() if k not in self._run_settings}
        seed = params["random_state"]  # (a NumPy integer too, as a JSON number)
        params["random_state"] = int(seed) if isinstance(seed, Integral) else None
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fastseg_version": __version__,
            "estimator": self.estimator_name,
            "params": params,
        }
