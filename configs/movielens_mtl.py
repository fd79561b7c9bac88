"""MovieLens-1M MTL baseline (``001`` App. D.6): tasks watch (binary) and rating.

Embeddings of ``001`` D.6 into an MLP, Adam, 100 epochs, learning rate halved
every 25 epochs; the rating loss is masked where the movie was not watched.

    python -m launch.train --config=configs/movielens_mtl.py --workdir=runs/movielens
"""

from tf_mtl.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = arg == "runlocal"
    c.epochs = 100
    c.data = {"name": "movielens", "batch_size": 1024}
    c.model.encoder, c.model.encoder_kwargs = "movielens", {"hidden": [64, 32]}
    c.metrics = {"watch": ["binary_accuracy_logits"], "rating": ["mae"]}
    c.optimizer.update(name="adam", learning_rate=1e-3, halve_every_epochs=25)
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size = 1, 2, 8
    return c
