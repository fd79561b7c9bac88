"""A routed residual block with a strided 1x1 projection shortcut (ResNet-18's stage
transitions), cheap enough for every run: routed, trained, saved and loaded."""

import keras
import numpy as np

import tf_mtl
from tf_mtl.encoders import ResidualBlock

TASKS = ["t0", "t1", "t2"]
ROUTING = {"kind": "maximum_roaming", "num_tasks": 3, "sharing_ratio": 0.5,
           "update_every": 1, "seed": 4}


def _model():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same"),
                                ResidualBlock(6, strides=2, routing=ROUTING),
                                keras.layers.GlobalAveragePooling2D()])
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in TASKS},
                                  {t: "mse" for t in TASKS})
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


def test_the_strided_projection_is_routed_trained_saved_and_loaded(tmp_path):
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 8, 2)).astype("float32")
    y = {t: rng.standard_normal((6, 1)).astype("float32") for t in TASKS}
    model.build_for(x)
    block = model.encoder.layers[1]
    assert block.projection is not None   # 4 -> 6 channels at stride 2
    (mask,) = [l for l in block.projection if isinstance(l, tf_mtl.routing.MaximumRoaming)]
    assert len(tf_mtl.routing.routing_layers(model.encoder)) == 3   # two convs, the shortcut
    # A shortcut channel task t0 does not use and t1 does: changing the 1x1 kernel there
    # changes t1's output only (the shortcut is masked per task).
    masks = keras.ops.convert_to_numpy(mask.masks)
    (c,) = np.flatnonzero((masks[0] == 0) & (masks[1] == 1))[:1]
    conv = block.projection[0]
    before = {t: keras.ops.convert_to_numpy(v) for t, v in model(x, training=False).items()}
    kernel = conv.kernel.numpy()
    kernel[..., c] += 1.0
    conv.kernel.assign(kernel)
    after = {t: keras.ops.convert_to_numpy(v) for t, v in model(x, training=False).items()}
    np.testing.assert_array_equal(after["t0"], before["t0"])
    assert np.abs(after["t1"] - before["t1"]).max() > 1e-4
    # Two steps move the masks (update_every=1), then save and load.
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert not np.array_equal(keras.ops.convert_to_numpy(mask.masks), masks)
    path = str(tmp_path / "routed.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for t, out in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[t], out, rtol=1e-5, atol=1e-6)
