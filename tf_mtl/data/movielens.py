"""MovieLens-1M from TFDS ``movielens/1m-ratings``: tasks ``watch`` and ``rating`` (``001`` App. D.6).

Construction (deterministic from ``seed``):

1. Every rating is a watched user–movie pair: ``watch = 1``, ``rating`` = stars.
2. Each user gets as many *unwatched* movies as they watched, drawn uniformly
   from the movies they did not rate (capped by how many they did not rate),
   so watched and unwatched pairs are balanced per user: ``watch = 0``.
3. ``rating`` is masked where not watched: its label is 0 and its sample
   weight is 0, so the rating loss and metrics only see watched pairs
   (the batch mean still divides by the batch size, as a masked Keras loss does).
4. The pairs are shuffled and split 80/10/10 into train/validation/test;
   ``num_examples`` subsamples them first (the paper samples 1.6M).

Features (``x`` is a dict of int32 ids, embedded by ``MovieLensEncoder`` with
``001`` D.6's sizes): ``uid`` (40), ``gender`` (5), ``age`` (10), ``occupation``
(20), ``zip`` (20), ``vid`` (40), ``title`` (20, mean of its word embeddings),
``genre`` (20, mean of its genre embeddings). Numeric ids map to themselves;
other strings (zip codes, title words) are hashed into ``VOCAB`` buckets.
"""

import re
import zlib

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.data import sources

VOCAB = {"uid": 6041, "gender": 2, "age": 7, "occupation": 21, "zip": 4096, "vid": 3953,
         "title": 4096, "genre": 21}
EMBED = {"uid": 40, "gender": 5, "age": 10, "occupation": 20, "zip": 20, "vid": 40,
         "title": 20, "genre": 20}
AGE_BUCKETS = np.array([1, 18, 25, 35, 45, 50, 56], np.float32)
TITLE_WORDS = 6
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}


def _ids(values, vocab):
    """Numeric strings map to their number; others to a stable hash bucket."""
    uniq, inverse = np.unique(values, return_inverse=True)
    mapped = np.array([int(u) if u.isdigit() and int(u) < vocab else
                       zlib.crc32(u.encode()) % vocab for u in (v.decode() if isinstance(v, bytes)
                                                                 else str(v) for v in uniq)],
                      np.int32)
    return mapped[inverse]


def _title_ids(titles):
    uniq, inverse = np.unique(titles, return_inverse=True)
    table = np.zeros((len(uniq), TITLE_WORDS), np.int32)  # 0 = padding.
    for row, title in enumerate(uniq):
        words = re.findall(r"[a-z0-9']+", title.decode().lower())[:TITLE_WORDS]
        table[row, :len(words)] = [1 + zlib.crc32(w.encode()) % (VOCAB["title"] - 1)
                                   for w in words]
    return table[inverse]


def _load_ratings(data_dir, download, verify_checksums, retries):
    import tensorflow_datasets as tfds
    ds = sources.load("movielens/1m-ratings", "train", data_dir=data_dir, download=download,
                      verify_checksums=verify_checksums, retries=retries)

    def select(e):
        genres = tf.reduce_max(tf.one_hot(e["movie_genres"], VOCAB["genre"]), axis=0)
        return {"user": e["user_id"], "movie": e["movie_id"], "title": e["movie_title"],
                "genre": genres, "gender": tf.cast(e["user_gender"], tf.int32),
                "age": e["bucketized_user_age"], "occupation": e["user_occupation_label"],
                "zip": e["user_zip_code"], "rating": e["user_rating"]}

    parts = list(tfds.as_numpy(ds.map(select).batch(1 << 20)))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_pairs(r, seed=0):
    """Watched pairs plus per-user balanced unwatched pairs, as numpy columns."""
    rng = np.random.default_rng(seed)
    users, user_row = np.unique(r["user"], return_index=True)
    movies, movie_row = np.unique(r["movie"], return_index=True)
    u = np.searchsorted(users, r["user"])
    m = np.searchsorted(movies, r["movie"])
    neg_u, neg_m = [], []
    order = np.argsort(u, kind="stable")
    bounds = np.searchsorted(u[order], np.arange(len(users) + 1))
    for user in range(len(users)):
        watched = np.unique(m[order[bounds[user]:bounds[user + 1]]])
        unwatched = np.setdiff1d(np.arange(len(movies)), watched, assume_unique=True)
        k = min(bounds[user + 1] - bounds[user], len(unwatched))
        neg_m.append(rng.choice(unwatched, size=k, replace=False))
        neg_u.append(np.full(k, user))
    neg_u, neg_m = np.concatenate(neg_u).astype(int), np.concatenate(neg_m).astype(int)
    user_idx = np.concatenate([u, neg_u])
    movie_idx = np.concatenate([m, neg_m])
    urow, mrow = user_row[user_idx], movie_row[movie_idx]
    n_pos = len(u)
    watched = np.concatenate([np.ones(n_pos), np.zeros(len(neg_u))]).astype(np.float32)
    return {
        "uid": _ids(r["user"][urow], VOCAB["uid"]),
        "gender": r["gender"][urow].astype(np.int32),
        "age": np.clip(np.searchsorted(AGE_BUCKETS, r["age"][urow]), 0, VOCAB["age"] - 1
                       ).astype(np.int32),
        "occupation": np.clip(r["occupation"][urow], 0, VOCAB["occupation"] - 1).astype(np.int32),
        "zip": _ids(r["zip"][urow], VOCAB["zip"]),
        "vid": _ids(r["movie"][mrow], VOCAB["vid"]),
        "title": _title_ids(r["title"][mrow]),
        "genre": r["genre"][mrow].astype(np.float32),
        "watch": watched,
        "rating": np.where(watched > 0, np.concatenate([r["rating"], np.zeros(len(neg_u))]),
                           0.0).astype(np.float32),
        "user_index": user_idx,
    }


def movielens(split, *, batch_size=1024, num_examples=None, seed=0, shuffle=None,
              data_dir=None, download=True, verify_checksums=True, retries=False):
    """MovieLens-1M as batches of ``(features, {"watch", "rating"}, sample_weights)``.

    ``download``, ``verify_checksums`` and ``retries`` say how TFDS gets
    ``ml-1m.zip`` (``tf_mtl.data.sources``); placed by hand it goes in
    ``<data_dir>/downloads/manual/movielens/``.

    Example:
        >>> ds = tf_mtl.data.movielens("train", batch_size=1024)
        >>> model = tf_mtl.MultiTaskModel(tf_mtl.data.MovieLensEncoder(), ...)
    """
    if split not in SPLIT_FRACTIONS:
        raise ValueError(f"`split` must be one of {sorted(SPLIT_FRACTIONS)}. Received: "
                         f"split={split!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    pairs = build_pairs(_load_ratings(data_dir, download, verify_checksums, retries), seed)
    n = len(pairs["watch"])
    order = np.random.default_rng([seed, 1]).permutation(n)
    if num_examples is not None:
        order = order[:num_examples]
    lo, hi = SPLIT_FRACTIONS[split]
    keep = order[int(lo * len(order)):int(hi * len(order))]
    x = {k: pairs[k][keep] for k in EMBED}
    y = {"watch": pairs["watch"][keep, None], "rating": pairs["rating"][keep, None]}
    sw = {"watch": np.ones(len(keep), np.float32), "rating": pairs["watch"][keep]}
    ds = tf.data.Dataset.from_tensor_slices((x, y, sw))
    if split == "train" if shuffle is None else shuffle:
        ds = ds.shuffle(min(len(keep), 1 << 20), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="tf_mtl")
class MovieLensEncoder(keras.layers.Layer):
    """Embeds the MovieLens features, concatenates them, then ``Dense``/``Dropout`` pairs.

    The defaults are ``001`` App. D.6: embeddings of sizes ``EMBED`` ->
    ``Dense(50), Dropout(0.05), Dense(10), Dropout(0.01)``; the task heads
    project from the last layer. D.6 names no activation for the two Dense
    layers; ReLU is used (two activation-free Dense layers would collapse to one
    linear map). ``title`` and ``genre`` are bags: the mean of their word /
    genre embeddings.

    Args:
        hidden: units of each Dense layer (positive ints).
        dropout: dropout rate after each Dense layer: one per entry of
            ``hidden``, or one rate for all; each in [0, 1).
        activation: activation of every Dense layer (a Keras activation name).

    Example:
        >>> encoder = tf_mtl.data.MovieLensEncoder()   # 001 D.6
        >>> encoder = tf_mtl.data.MovieLensEncoder(hidden=[64, 32, 16], dropout=0.0)
    """

    def __init__(self, hidden=(50, 10), dropout=(0.05, 0.01), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if (isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__")
                or not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0
                           for h in hidden)):
            raise ValueError("`hidden` must be a list of positive ints. "
                             f"Received: hidden={hidden!r}")
        if isinstance(dropout, (int, float, np.number)) and not isinstance(dropout, bool):
            dropout = [dropout] * len(hidden)  # One rate for every Dense layer.
        if (isinstance(dropout, (str, bytes)) or not hasattr(dropout, "__iter__")
                or not all(isinstance(r, (int, float, np.number)) and not isinstance(r, bool)
                           and 0 <= r < 1 for r in dropout)):
            raise ValueError("`dropout` must be a rate in [0, 1) or a list of them. "
                             f"Received: dropout={dropout!r}")
        hidden, dropout = [int(h) for h in hidden], [float(r) for r in dropout]
        if len(dropout) != len(hidden):
            raise ValueError("`dropout` must give one rate per entry of `hidden` "
                             f"({len(hidden)}). Received: dropout={dropout!r}")
        try:
            keras.activations.get(activation)
        except ValueError as e:
            raise ValueError("`activation` must be a Keras activation. "
                             f"Received: activation={activation!r}") from e
        self.hidden, self.dropout, self.activation = hidden, dropout, activation
        self.embeddings = {k: keras.layers.Embedding(VOCAB[k], EMBED[k], name=f"embed_{k}")
                           for k in EMBED}
        self.mlp = []
        for i, (units, rate) in enumerate(zip(hidden, dropout)):
            self.mlp.append(keras.layers.Dense(units, activation=activation, name=f"dense_{i}"))
            self.mlp.append(keras.layers.Dropout(rate, name=f"dropout_{i}"))

    @property
    def shared_input_keys(self):
        """The feature dict's keys: ``MultiTaskModel`` reads such a dict as one input
        shared by the tasks, not as per-task inputs (``tf_mtl.routing.task_paths``)."""
        return tuple(EMBED)

    def build(self, input_shape):
        for k, layer in self.embeddings.items():
            layer.build((None,))
        width = sum(EMBED.values())
        for layer in self.mlp:
            if isinstance(layer, keras.layers.Dense):
                layer.build((None, width))
                width = layer.units
        self.built = True

    def call(self, x, training=None):
        parts = []
        for k, layer in self.embeddings.items():
            if k == "title":
                words = tf.cast(x[k], tf.int32)
                mask = tf.cast(words > 0, tf.float32)[..., None]
                parts.append(tf.reduce_sum(layer(words) * mask, 1)
                             / tf.maximum(tf.reduce_sum(mask, 1), 1.0))
            elif k == "genre":
                weights = tf.cast(x[k], tf.float32)
                parts.append(tf.matmul(weights, layer.embeddings)
                             / tf.maximum(tf.reduce_sum(weights, -1, keepdims=True), 1.0))
            else:
                parts.append(layer(tf.cast(x[k], tf.int32)))
        h = tf.concat(parts, axis=-1)
        for layer in self.mlp:
            h = layer(h, training=training) if isinstance(layer, keras.layers.Dropout) else layer(h)
        return h

    def compute_output_shape(self, input_shape):
        return (None, self.hidden[-1] if self.hidden else sum(EMBED.values()))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "dropout": self.dropout,
                # A callable activation is stored by its Keras name so the config stays JSON.
                "activation": keras.activations.serialize(keras.activations.get(self.activation))}
