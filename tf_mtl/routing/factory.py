"""Mask layers for an encoder's ``routing`` option: one ``MaskFactory`` per encoder."""

import inspect

from tf_mtl.routing.masks import TaskRouting
from tf_mtl.routing.maximum_roaming import MaximumRoaming

KINDS = {"maximum_roaming": MaximumRoaming, "task_routing": TaskRouting}


class MaskFactory:
    """Mask layers for an encoder's ``routing`` option, a dict
    ``{"kind": "maximum_roaming" | "task_routing", **layer arguments}``.

    ``factory(kernel_layer)`` returns the next mask layer; the ``k``-th gets
    ``seed + k``, so layers of equal width draw different masks.

    Example:
        >>> masks = MaskFactory({"kind": "task_routing", "num_tasks": 8,
        ...                      "sharing_ratio": 0.5, "seed": 10})
        >>> mask = masks(conv)    # after conv's BatchNorm, before the activation
    """

    def __init__(self, routing):
        if not isinstance(routing, dict) or routing.get("kind") not in KINDS:
            raise ValueError(f"`routing` must be a dict whose 'kind' is one of {sorted(KINDS)}. "
                             f"Received: routing={routing!r}")
        self.kind = routing["kind"]
        allowed = set(inspect.signature(KINDS[self.kind].__init__).parameters) - {"self", "kwargs"}
        unknown = sorted(set(routing) - allowed - {"kind"})
        if unknown:
            raise ValueError(f"Unknown `routing` key(s) {unknown} for kind={self.kind!r}; "
                             f"allowed: {sorted(allowed)}. Received: routing={routing!r}")
        self.kwargs = {k: v for k, v in routing.items() if k != "kind"}
        self.seed = self.kwargs.pop("seed", 0)
        self.count = 0
        KINDS[self.kind](seed=self.seed, **self.kwargs)  # validates the arguments now

    def __call__(self, kernel_layer=None):
        layer = KINDS[self.kind](seed=self.seed + self.count, **self.kwargs)
        self.count += 1
        if isinstance(layer, MaximumRoaming):
            layer.follow(kernel_layer)
        return layer
