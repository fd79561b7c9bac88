"""MultiMNIST MTL baseline (``001`` App. D.4): multi-task LeNet, tasks left/right.

Momentum 0.9, lr halved every 30 epochs, task weights 0.5/0.5. ``001`` picked
the learning rate from {1e-4, 5e-4, 5e-3, 1e-2, 5e-2} on validation; 1e-2 here.
Set ``--config.data.source=fashion_mnist`` for MultiFashion, or
``--config.data.name=multi_mnist_pickle --config.data.path=...`` (and remove
``source``) for Lin et al.'s released files.

    python -m launch.train --config=configs/multimnist_mtl.py --workdir=runs/multimnist
"""

from tf_mtl.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = arg == "runlocal"
    c.epochs = 100
    c.data = {"name": "multi_mnist", "source": "mnist", "batch_size": 256}
    c.model.encoder, c.model.encoder_kwargs = "lenet", {}
    c.model.update(loss_weights={"left": 0.5, "right": 0.5})
    c.metrics = {"all": ["accuracy"]}
    c.optimizer.update(name="sgd", learning_rate=1e-2, momentum=0.9, halve_every_epochs=30)
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size = 1, 2, 4
    return c
