"""An independent copy of a MultiTaskModel and its optimizer state, for tests that
check a number by really stepping the copy."""

import tf_mtl


def copy_model(model, x):
    """The copy (weights, BatchNorm statistics) and its optimizer with the same state."""
    clone = tf_mtl.MultiTaskModel.from_config(model.get_config())
    clone.build_for(x)  # every variable, the rule's state shaped like the shared ones too
    clone.set_weights(model.get_weights())
    opt = model.optimizer.from_config(model.optimizer.get_config())
    clone.compile(optimizer=opt)
    if model.optimizer.built:
        opt.build(clone.trainable_variables)
        for dst, src in zip(opt.variables, model.optimizer.variables):
            dst.assign(src)
    return clone, opt
