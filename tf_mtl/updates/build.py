"""Update rules from flat settings: what ``configs/*.py`` and ``--config.rule.*`` flags give.

``build_update(settings)`` takes a mapping (an ``ml_collections.ConfigDict``
or a dict) with the fields of ``DEFAULTS``:

* ``name``: ``"equal"``, ``"uw"``, ``"cov"``, ``"dwa"``, ``"gradnorm"``,
  ``"pcgrad"``, ``"mgda"`` or ``"itmtl"``;
* ``weighting``: ``""`` or a loss weighting name (``"uw"``, ``"cov"``, ``"dwa"``,
  ``"gradnorm"``) composed into ``pcgrad``, ``mgda`` and ``itmtl`` (UW-PCGrad is
  ``name="pcgrad", weighting="uw"``);
* ``candidates`` (itmtl): comma-separated task names, ``|``-joined subsets,
  ``all``, and the gradient rules ``pcgrad`` / ``mgda`` (built with the fields
  below): ``"left,right,all"`` or ``"all,pcgrad"``;
* each rule's own arguments: ``form``; ``temperature``, ``period``; ``alpha``,
  ``on``, ``gradnorm_learning_rate``; ``seed``; ``upper_bound``,
  ``normalization``; ``lookahead``, ``update_heads``.
"""

from tf_mtl.updates.cov import CoV
from tf_mtl.updates.dwa import DWA
from tf_mtl.updates.equal_weights import EqualWeights
from tf_mtl.updates.gradnorm import GradNorm
from tf_mtl.updates.itmtl import ITMTL
from tf_mtl.updates.mgda import MGDA
from tf_mtl.updates.pcgrad import PCGrad
from tf_mtl.updates.uncertainty import UncertaintyWeights

DEFAULTS = {
    "name": "equal", "weighting": "", "candidates": "", "form": "kendall",
    "temperature": 2.0, "period": 1, "alpha": 1.5, "on": "last_shared_layer",
    "gradnorm_learning_rate": 0.025, "seed": 0, "upper_bound": True, "normalization": "none",
    "lookahead": "exact", "update_heads": False,
}
WEIGHTINGS = ("uw", "cov", "dwa", "gradnorm")
GRADIENT_RULES = ("pcgrad", "mgda")
NAMES = ("equal",) + WEIGHTINGS + GRADIENT_RULES + ("itmtl",)


def _weighting(name, s):
    return {"uw": lambda: UncertaintyWeights(form=s["form"]),
            "cov": CoV,
            "dwa": lambda: DWA(temperature=s["temperature"], period=s["period"]),
            "gradnorm": lambda: GradNorm(alpha=s["alpha"], on=s["on"],
                                         learning_rate=s["gradnorm_learning_rate"])}[name]()


def _gradient_rule(name, s, weighting=None):
    if name == "pcgrad":
        return PCGrad(weighting=weighting, seed=s["seed"])
    return MGDA(upper_bound=s["upper_bound"], normalization=s["normalization"],
                weighting=weighting)


def build_update(settings):
    """The ``tf_mtl.updates`` rule ``settings`` describe (see the module docstring)."""
    given = dict(settings.to_dict() if hasattr(settings, "to_dict") else settings)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown update setting(s) {unknown}; known: {sorted(DEFAULTS)}. "
                         f"Received: {given}")
    s = {**DEFAULTS, **given}
    name, weighting = s["name"], s["weighting"] or ""
    if name not in NAMES:
        raise ValueError(f"`rule.name` must be one of {NAMES}. Received: name={name!r}")
    if weighting and weighting not in WEIGHTINGS:
        raise ValueError(f"`rule.weighting` must be '' or one of {WEIGHTINGS}. Received: "
                         f"weighting={weighting!r}")
    if weighting and name not in GRADIENT_RULES + ("itmtl",):
        raise ValueError(f"`rule.weighting` composes with {GRADIENT_RULES + ('itmtl',)} only. "
                         f"Received: name={name!r}, weighting={weighting!r}")
    if name == "equal":
        return EqualWeights()
    if name in WEIGHTINGS:
        return _weighting(name, s)
    composed = _weighting(weighting, s) if weighting else None
    if name in GRADIENT_RULES:
        return _gradient_rule(name, s, composed)
    parts = [c.strip() for c in str(s["candidates"]).split(",") if c.strip()]
    if not parts:
        raise ValueError("`rule.candidates` must list IT-MTL's candidates, e.g. "
                         f"'left,right,all' or 'all,pcgrad'. Received: candidates={s['candidates']!r}")
    candidates = [_gradient_rule(c, s) if c in GRADIENT_RULES else c for c in parts]
    return ITMTL(candidates, lookahead=s["lookahead"], weighting=composed,
                 update_heads=s["update_heads"])
