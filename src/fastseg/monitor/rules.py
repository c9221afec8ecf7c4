"""The verdict rules: which measure, at which level, says "watch" or "retrain".

They are conventions, not statistical truths, so each is a pair (watch at, retrain at) that a
user can set; None for "retrain at" means the measure alone never asks for a retrain.

========== ========================================================= ======= =========
rule       measure                                                   watch   retrain
========== ========================================================= ======= =========
psi        a feature's PSI on the reference's decile bins (or levels) 0.1     0.25
wasserstein a numeric feature's Wasserstein distance / reference std  0.1     never
js         a categorical column's Jensen–Shannon distance (base 2)    0.1     never
share_psi  PSI of the segment shares                                  0.1     0.25
ood_share  share of rows farther from their centre than the 99th      0.02    0.05
           percentile of their segment's reference distances
           (1 % by construction in the reference)
centre_shift how far a segment's centre would move if refitted, in    0.25    0.5
           reference stds of the feature that moves most
========== ========================================================= ======= =========
"""

from dataclasses import asdict, dataclass, fields

from ..errors import DataError

STABLE, WATCH, RETRAIN = "stable", "watch", "retrain"
ORDER = (STABLE, WATCH, RETRAIN)


@dataclass(frozen=True)
class DriftRules:
    """(watch at, retrain at) per measure; see the module docstring for what each measures."""

    psi: tuple = (0.1, 0.25)
    wasserstein: tuple = (0.1, None)
    js: tuple = (0.1, None)
    share_psi: tuple = (0.1, 0.25)
    ood_share: tuple = (0.02, 0.05)
    centre_shift: tuple = (0.25, 0.5)

    def __post_init__(self):
        for f in fields(self):
            watch, retrain = _pair(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, (watch, retrain))

    @classmethod
    def of(cls, rules):
        """Rules from None (the defaults), a ``DriftRules``, or {name: (watch, retrain)}."""
        if rules is None or isinstance(rules, cls):
            return rules or cls()
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(rules) - names)
        if unknown:
            known = ", ".join(sorted(names))
            raise DataError(f"no drift rule named {', '.join(unknown)}: the rules are {known}")
        return cls(**dict(rules))

    def judge(self, name, value):
        """(verdict, reason in words) of ``value`` of measure ``name`` (None: not measured)."""
        watch, retrain = getattr(self, name)
        label = LABELS[name]
        if value is None:
            return STABLE, f"{label} not measured"
        if retrain is not None and value >= retrain:
            return RETRAIN, f"{label} {value:.3g} >= {retrain:g} (retrain)"
        if value >= watch:
            return WATCH, f"{label} {value:.3g} >= {watch:g} (watch)"
        return STABLE, f"{label} {value:.3g} < {watch:g}"

    @staticmethod
    def at_least(verdict, level):
        """Whether ``verdict`` is ``level`` or worse."""
        return ORDER.index(verdict) >= ORDER.index(level)

    def as_dict(self):
        return {name: list(pair) for name, pair in asdict(self).items()}


LABELS = {
    "psi": "PSI",
    "wasserstein": "Wasserstein/std",
    "js": "Jensen-Shannon",
    "share_psi": "segment share PSI",
    "ood_share": "out-of-distribution share",
    "centre_shift": "centre shift (stds)",
}


def worst(verdicts):
    """The most serious of some verdicts (stable when there are none)."""
    return max(verdicts, key=ORDER.index, default=STABLE)


def _pair(name, value):
    try:
        watch, retrain = value
        watch = float(watch)
        retrain = None if retrain is None else float(retrain)
    except (TypeError, ValueError):
        raise DataError(
            f"drift rule {name}={value!r}: give (watch at, retrain at), e.g. (0.1, 0.25), "
            "retrain at None for never"
        ) from None
    if watch < 0 or (retrain is not None and retrain < watch):
        raise DataError(f"drift rule {name}: 0 <= watch <= retrain, not {watch} and {retrain}")
    return watch, retrain
