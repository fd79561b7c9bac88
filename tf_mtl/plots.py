"""Affinity heatmaps (needs matplotlib: ``pip install tf_mtl[plot]``)."""

import numpy as np


def affinity_array(scores, tasks, normalize=False):
    """``(sources, [n_sources, m] array)`` from ``scores[source][target]``.

    ``normalize=True`` divides each target's column by the magnitude of its
    self-transference ``|Z[j][j]|`` (``001`` Fig. 6), so values read as "this
    fraction of the progress the task makes on itself".
    """
    sources = list(scores)
    values = np.array([[np.nan if scores[s].get(t) is None else scores[s][t]
                        for t in tasks] for s in sources], dtype=float)
    if normalize:
        own = np.array([abs(scores[t][t]) if t in scores and scores[t].get(t) else np.nan
                        for t in tasks])
        values = values / own[None, :]
    return sources, values


def plot_affinity(scores, tasks, path, normalize=False, title=None):
    """Writes a heatmap of ``scores[source][target]`` to ``path`` (PNG)."""
    fig = _heatmap(scores, tasks, normalize, title)
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def affinity_image(scores, tasks, normalize=False, cell=16):
    """The heatmap as a ``uint8`` RGB array (for TensorBoard), drawn with numpy alone (under
    a millisecond; matplotlib took ~0.2 s, most of a quickstart epoch): rows are sources in
    ``scores``' order, columns ``tasks``; blue positive, red negative, white 0, grey missing,
    colours scaled to the largest magnitude; ``cell`` pixels a cell, 1-pixel grid lines."""
    _, values = affinity_array(scores, tasks, normalize)
    finite = np.isfinite(values)
    limit = np.abs(values[finite]).max() if finite.any() and np.abs(values[finite]).max() > 0 else 1.0
    v = np.where(finite, np.clip(values / limit, -1, 1), 0.0)[..., None]
    white, blue, red = np.array([255., 255, 255]), np.array([33., 102, 172]), np.array([178., 24, 43])
    rgb = np.where(v >= 0, white + v * (blue - white), white - v * (red - white))
    rgb = np.where(finite[..., None], rgb, 160.0)
    image = np.kron(rgb, np.ones((cell, cell, 1)))
    image[::cell, :, :] = image[:, ::cell, :] = 0.0
    return image.astype(np.uint8)


def _heatmap(scores, tasks, normalize, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("Plotting affinities needs matplotlib: pip install "
                          "'tf_mtl[plot]'") from e
    sources, values = affinity_array(scores, tasks, normalize)
    # Room on the left for the longest source label (e.g. a group "a|b|c|d|e").
    label_width = 0.08 * max(len(str(s)) for s in sources)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(tasks) + label_width,
                                    1.0 + 0.45 * len(sources)))
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(tasks)), labels=tasks, rotation=45, ha="right")
    ax.set_yticks(range(len(sources)), labels=sources)
    ax.set_xlabel("target (loss that changes)")
    ax.set_ylabel("source (gradient applied)")
    for s in range(len(sources)):
        for j in range(len(tasks)):
            if np.isfinite(values[s, j]):
                ax.text(j, s, f"{values[s, j]:.2g}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax)
    ax.set_title(title or ("affinity / |self-affinity|" if normalize else "affinity"))
    fig.tight_layout()
    return fig
