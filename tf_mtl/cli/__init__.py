"""Command-line entry points (absl apps): parse flags, call library code.

Installed as console scripts ``tf-mtl-train``, ``tf-mtl-group`` and
``tf-mtl-benchmark``; from a checkout, ``python -m launch.train`` (and
``launch.group``, ``launch.benchmark``) run the same ``main``.
"""
