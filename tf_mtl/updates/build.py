"""Update rules from flat settings: what ``configs/*.py`` and ``--config.rule.*`` flags give.

``build_update(settings)`` takes a mapping (an ``ml_collections.ConfigDict``
or a dict) with the fields of ``DEFAULTS``:

* ``name``: a rule of ``NAMES``: ``"equal"``; the loss weightings ``"uw"``,
  ``"cov"``, ``"dwa"``, ``"gradnorm"``, ``"rlw"``, ``"gls"``, ``"famo"``,
  ``"stch"``; the gradient rules ``"pcgrad"``, ``"mgda"``, ``"cagrad"``,
  ``"imtl"``, ``"nash_mtl"``, ``"aligned_mtl"``, ``"upgrad"``, ``"dualproj"``,
  ``"config"`` (ConFIG), ``"gradvac"``, ``"fairgrad"``, ``"excess_mtl"``; the
  direction rules ``"dbmtl"``, ``"moco"``, ``"graddrop"``; or ``"itmtl"``;
* ``weighting``: ``""`` or a loss weighting name, composed into a gradient or
  direction rule that takes one, or into ``itmtl`` (UW-PCGrad is
  ``name="pcgrad", weighting="uw"``);
* ``candidates`` (itmtl): comma-separated task names, ``|``-joined subsets,
  ``all``, and gradient/direction rule names (built with their settings):
  ``"left,right,all"`` or ``"all,pcgrad,cagrad"``;
* the first rules' own arguments, flat: ``form`` (uncertainty weighting: one form
  for every task, or per task as ``"left:classification,right:regression"``;
  ``initial_log_variance``, the start of its log-variances); ``temperature``, ``period``;
  ``alpha``, ``on``, ``gradnorm_learning_rate``; ``seed``; ``upper_bound``,
  ``normalization``; ``lookahead``, ``update_heads``;
* every later rule's arguments under its name, with the rule's own defaults
  (its constructor's): ``--config.rule.cagrad.c=0.5``,
  ``--config.rule.imtl.mode=gradient``, ``--config.rule.fairgrad.alpha=2``.
"""

import importlib
import inspect

from tf_mtl.updates.cov import CoV
from tf_mtl.updates.dwa import DWA
from tf_mtl.updates.equal_weights import EqualWeights
from tf_mtl.updates.gradnorm import GradNorm
from tf_mtl.updates.itmtl import ITMTL
from tf_mtl.updates.mgda import MGDA
from tf_mtl.updates.pcgrad import PCGrad
from tf_mtl.updates.uncertainty import UncertaintyWeights

FLAT_DEFAULTS = {
    "name": "equal", "weighting": "", "candidates": "", "form": "regression",
    "temperature": 2.0, "period": 1, "alpha": 1.5, "on": "last_shared_layer",
    "gradnorm_learning_rate": 0.025, "seed": 0, "upper_bound": True, "normalization": "none",
    "lookahead": "exact", "update_heads": False, "initial_log_variance": 0.0,
}
# Rules whose arguments live under their name: config name -> (module, class).
NESTED = {
    "rlw": ("rlw", "RLW"), "gls": ("gls", "GLS"), "famo": ("famo", "FAMO"),
    "stch": ("stch", "STCH"),
    "cagrad": ("cagrad", "CAGrad"), "imtl": ("imtl", "IMTL"), "nash_mtl": ("nash_mtl", "NashMTL"),
    "aligned_mtl": ("aligned_mtl", "AlignedMTL"), "upgrad": ("dual_cone", "UPGrad"),
    "dualproj": ("dual_cone", "DualProj"), "config": ("config_rule", "ConFIG"),
    "gradvac": ("gradvac", "GradVac"), "fairgrad": ("fairgrad", "FairGrad"),
    "excess_mtl": ("excess_mtl", "ExcessMTL"),
    "dbmtl": ("dbmtl", "DBMTL"), "moco": ("moco", "MoCo"), "graddrop": ("graddrop", "GradDrop"),
}
WEIGHTINGS = ("uw", "cov", "dwa", "gradnorm", "rlw", "gls", "famo", "stch")
GRADIENT_RULES = ("pcgrad", "mgda") + tuple(n for n in NESTED if n not in WEIGHTINGS)
NAMES = ("equal",) + WEIGHTINGS + GRADIENT_RULES + ("itmtl",)
_SCALARS = (bool, int, float, str)


def _class(name):
    module, cls = NESTED[name]
    return getattr(importlib.import_module(f"tf_mtl.updates.{module}"), cls)


def _arguments(cls):
    """A rule's constructor arguments a flag can set, with their defaults.

    ``weighting`` is composed by name; arguments whose default is not a scalar
    (``None``, lists) are left to Python (a flag could not type them).
    """
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in ("self", "weighting") and p.kind is p.POSITIONAL_OR_KEYWORD
            and isinstance(p.default, _SCALARS)}


def _takes_weighting(cls):
    return "weighting" in inspect.signature(cls.__init__).parameters


DEFAULTS = {**FLAT_DEFAULTS, **{n: _arguments(_class(n)) for n in NESTED}}


def _uw_form(text):
    """``"regression"`` or per task ``"a:classification,b:regression"`` -> a form or ``{task: form}``."""
    if ":" not in str(text):
        return text
    pairs = [p.strip().partition(":") for p in str(text).split(",") if p.strip()]
    if any(not task or not sep or not form for task, sep, form in pairs):
        raise ValueError("`rule.form` must be one form or 'task:form' pairs joined by commas, "
                         f"e.g. 'left:classification,right:regression'. Received: form={text!r}")
    return {task.strip(): form.strip() for task, _, form in pairs}


def _weighting(name, s):
    if name in NESTED:
        return _class(name)(**s[name])
    return {"uw": lambda: UncertaintyWeights(form=_uw_form(s["form"]),
                                             initial_log_variance=s["initial_log_variance"]),
            "cov": CoV,
            "dwa": lambda: DWA(temperature=s["temperature"], period=s["period"]),
            "gradnorm": lambda: GradNorm(alpha=s["alpha"], on=s["on"],
                                         learning_rate=s["gradnorm_learning_rate"])}[name]()


def _gradient_rule(name, s, weighting=None):
    if name == "pcgrad":
        return PCGrad(weighting=weighting, seed=s["seed"])
    if name == "mgda":
        return MGDA(upper_bound=s["upper_bound"], normalization=s["normalization"],
                    weighting=weighting)
    cls = _class(name)
    if weighting is not None and not _takes_weighting(cls):
        raise ValueError(f"`rule.weighting` does not compose with {name!r} ({cls.__name__} "
                         f"takes no weighting). Received: name={name!r}, "
                         f"weighting={weighting.name!r}")
    extra = {"weighting": weighting} if weighting is not None else {}
    return cls(**s[name], **extra)


def _settings(settings):
    given = dict(settings.to_dict() if hasattr(settings, "to_dict") else settings)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown update setting(s) {unknown}; known: {sorted(DEFAULTS)}. "
                         f"Received: {given}")
    s = {**DEFAULTS, **given}
    for name in NESTED:  # A partial group keeps the other defaults.
        group = dict(given.get(name) or {})
        unknown = sorted(set(group) - set(DEFAULTS[name]))
        if unknown:
            raise ValueError(f"Unknown `rule.{name}` setting(s) {unknown}; known: "
                             f"{sorted(DEFAULTS[name])}. Received: {group}")
        s[name] = {**DEFAULTS[name], **group}
    return s


def build_update(settings):
    """The ``tf_mtl.updates`` rule ``settings`` describe (see the module docstring)."""
    s = _settings(settings)
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
