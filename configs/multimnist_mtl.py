r"""MultiMNIST MTL baseline (``001`` App. D.4): multi-task LeNet, tasks left/right.

Momentum 0.9, lr halved every 30 epochs, task weights 0.5/0.5. ``001`` picked
the learning rate from {1e-4, 5e-4, 5e-3, 1e-2, 5e-2} on validation; 1e-2 here.

Data fields: ``source`` (TFDS construction) and ``path`` (Lin et al.'s pickle)
belong to different loaders, so both start empty. An empty field is not passed
to the loader (its default applies: ``source`` "" is MNIST); a non-empty field
the chosen loader does not take stops the run with an error naming it.

    # MultiMNIST from TFDS (50k/10k/10k composites, see tf_mtl.data.multi_mnist):
    python -m launch.train --config=configs/multimnist_mtl.py --workdir=runs/multimnist
    # MultiFashion / MultiFashion+MNIST from TFDS:
    python -m launch.train --config=configs/multimnist_mtl.py --workdir=runs/multifashion \
        --config.data.source=fashion_mnist          # or mixed
    # Lin et al.'s released pickles, as 001 App. D.4 used (100k/20k/20k);
    # ``source`` must stay empty, the file fixes the images:
    python -m launch.train --config=configs/multimnist_mtl.py --workdir=runs/multimnist_lin \
        --config.data.name=multi_mnist_pickle --config.data.path=/path/to/multi_mnist.pickle
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs = 100
    c.data = {"name": "multi_mnist", "source": "", "path": "", "batch_size": 256}
    c.model.encoder, c.model.encoder_kwargs = "lenet", {}
    c.model.update(loss_weights={"left": 0.5, "right": 0.5})
    c.metrics = {"all": ["accuracy"]}
    c.optimizer.update(name="sgd", learning_rate=1e-2, momentum=0.9, halve_every_epochs=30)
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size = 1, 2, 4
    return c
