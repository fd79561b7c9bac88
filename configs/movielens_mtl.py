"""MovieLens-1M MTL baseline (``001`` App. D.6): tasks watch (binary) and rating.

``001`` D.6: the embeddings concatenated into Dense(50), Dropout(0.05),
Dense(10), Dropout(0.01) (ReLU: D.6 names no activation), Adam with
epsilon 1e-8 (Keras's default is 1e-7), 100 epochs, learning rate halved every
25 epochs (D.6 says "lowers" without the factor); the rating loss is masked
where the movie was not watched.

    python -m launch.train --config=configs/movielens_mtl.py --workdir=runs/movielens
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs = 100
    c.data = {"name": "movielens", "batch_size": 1024}
    c.model.encoder = "movielens"
    c.model.encoder_kwargs = {"hidden": [50, 10], "dropout": [0.05, 0.01], "activation": "relu"}
    c.metrics = {"watch": ["binary_accuracy_logits"], "rating": ["mae"]}
    c.optimizer.update(name="adam", learning_rate=1e-3, halve_every_epochs=25, epsilon=1e-8)
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size = 1, 2, 8
    return c
