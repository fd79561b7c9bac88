"""What a config's argument (``--config=FILE.py:ARG``) may be, shared by the configs.

A config without variants takes nothing or ``runlocal``; a config with variants takes
``variant``, ``variant,runlocal`` or ``runlocal``. Anything else is refused, so a
misspelt ``:runloacl`` never starts the full run.
"""

import importlib


def runlocal(arg):
    """Whether ``arg`` (None, ``""`` or ``"runlocal"``) asks for the smoke run."""
    if arg not in (None, "", "runlocal"):
        raise ValueError("This config takes no argument or ':runlocal'. "
                         f"Received: {arg!r}")
    return arg == "runlocal"


def parse_arg(arg, default):
    """``(variant, runlocal)`` from ``"variant"``, ``"variant,runlocal"`` or ``"runlocal"``."""
    parts = [p for p in (arg or "").split(",") if p]
    runlocal_run = "runlocal" in parts
    names = [p for p in parts if p != "runlocal"]
    if len(names) > 1:
        raise ValueError(f"One variant at most (with ',runlocal'). Received: {arg!r}")
    return (names[0] if names else default), runlocal_run


def variant_config(arg, variants, default, base):
    """Config module ``base`` (``:runlocal`` passed on) with ``variants[<variant>]`` as its rule."""
    variant, runlocal_run = parse_arg(arg, default)
    if variant not in variants:
        raise ValueError(f"Unknown variant; known: {sorted(variants)}. Received: {variant!r}")
    c = importlib.import_module(base).get_config("runlocal" if runlocal_run else None)
    c.rule.update(variants[variant])
    return c
