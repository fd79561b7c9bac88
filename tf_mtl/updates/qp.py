"""Exact small quadratic programs over the nonnegative orthant, in TensorFlow.

The gradient rules that solve a QP over the task Gram matrix ``G`` (``m × m``,
positive *semi*-definite, often singular: two equal gradients, more tasks than
the gradients' rank) all reduce to one problem,

    ``x* = argmin_{x >= 0} ½ xᵀQx + cᵀx``,   ``Q`` PSD, ``c`` in the range of ``Q``,

which is a nonnegative least-squares problem ``min_{x >= 0} ||Ax - b||²`` with
``Q = AᵀA``, ``c = -Aᵀb``. ``nonnegative_qp`` solves it by Lawson & Hanson's
active-set NNLS (*Solving Least Squares Problems*, 1974, ch. 23) written on
``Q`` and ``c`` alone: move the index of the largest ``-(Qx + c)`` into the
passive set ``P``, solve ``Q_PP s_P = -c_P``, step back towards ``x`` while
some ``s_i <= 0`` and drop the indices that reach 0, until no index has a
positive ``-(Qx + c)`` (the KKT conditions). An index enters only when its
column is outside the span of the passive ones, so ``Q_PP`` stays nonsingular
(in exact arithmetic) even when ``Q`` is singular, and the method ends after
finitely many steps at the exact minimiser. The face solves are a
pseudo-inverse (``eigh``) with one refinement step, in float64: no solve can
raise on a rounding-singular ``Q_PP``. All rows of ``c`` are solved in one
``tf.while_loop`` (graph, ``tf.distribute`` and XLA friendly).

Two uses:

* ``min_norm_weights(G)``: the simplex point ``α`` minimising ``αᵀGα`` (MGDA).
  With ``x* = argmin_{x >= 0} xᵀGx + (1ᵀx - 1)²`` (``Q = G + 11ᵀ``, ``c = -1``)
  ``α* = x*/1ᵀx*``: for a fixed total ``s = 1ᵀx`` the first term is at least
  ``s² ρ`` (``ρ`` the min-norm value) with equality at ``s α*``, and
  ``s² ρ + (s - 1)²`` is smallest at ``s = 1/(1 + ρ) > 0``.
* ``dual_cone_weights(G, U)``: for each row ``u`` of ``U``,
  ``v = argmin_{v >= u} vᵀGv``; ``Jᵀv`` is the projection of ``Jᵀu`` onto the
  dual cone ``{d : Jd >= 0}`` of the rows of ``J`` (``G = JJᵀ``; Quinton & Rey
  2024, Prop. 1). With ``v = u + z``: ``Q = G``, ``c = Gu``.
"""

import tensorflow as tf

_KKT_TOL = 1e-12   # the largest -(Qx + c) taken as 0, relative to max |c|
_RCOND = 8 * 2.2e-16   # eigenvalues of Q_PP below this times the largest are rounding (times m)


def _face_solution(hessian, rhs, passive):
    """``s`` with ``Q_PP s_P = rhs_P`` (least-norm if singular), ``s = 0`` off ``P``."""
    m = hessian.shape[-1]
    both = passive[:, :, None] & passive[:, None, :]
    eye = tf.eye(m, dtype=hessian.dtype)
    masked = tf.where(both, hessian[None], tf.zeros_like(hessian[None])) + tf.where(
        passive[:, :, None], tf.zeros_like(eye)[None], eye[None])   # identity off the face
    rhs = tf.where(passive, rhs, tf.zeros_like(rhs))
    values, vectors = tf.linalg.eigh(masked)
    # Relative to Q_PP's own scale (the identity off the face would hide a small Q_PP).
    face_scale = tf.reduce_max(tf.where(passive, tf.linalg.diag_part(masked), 0.0), axis=-1)
    keep = values > _RCOND * m * face_scale[:, None]
    inverse = tf.where(keep, 1.0 / tf.where(keep, values, tf.ones_like(values)),
                       tf.zeros_like(values))

    def pinv(r):
        return tf.linalg.matvec(vectors, inverse * tf.linalg.matvec(vectors, r, transpose_a=True))

    s = pinv(rhs)
    s = s + pinv(rhs - tf.linalg.matvec(masked, s))   # one refinement step
    return tf.where(passive, s, tf.zeros_like(s))


def nonnegative_qp(hessian, linear, max_iter=250):
    """``[b, m]``: for each row ``c`` of ``linear`` ``[b, m]``, ``argmin_{x >= 0} ½xᵀQx + cᵀx``.

    ``hessian`` ``Q`` is ``[m, m]`` PSD and ``c`` must lie in its range (an NNLS
    problem; every caller's does). Exact up to float64 rounding after at most
    ``max_iter`` active-set steps (the count for all rows together). A
    non-finite ``Q`` or row gives NaN rather than an error.
    """
    out_dtype = linear.dtype if linear.dtype.is_floating else tf.float32
    q_mat = tf.cast(hessian, tf.float64)
    c = tf.cast(linear, tf.float64)
    m = q_mat.shape[-1]
    finite = tf.reduce_all(tf.math.is_finite(q_mat)) & tf.reduce_all(
        tf.math.is_finite(c), axis=1)                                         # [b]
    q_mat = tf.where(tf.reduce_all(finite), q_mat, tf.eye(m, dtype=tf.float64))
    c = tf.where(finite[:, None], c, tf.zeros_like(c))
    scale = tf.reduce_max(tf.abs(tf.linalg.diag_part(q_mat)))   # x is scale-invariant
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    q_mat, target = q_mat / scale, -c / scale                    # target = -c = Aᵀb
    tol = _KKT_TOL * tf.maximum(tf.reduce_max(tf.abs(target), axis=1), 1e-300)   # [b]

    def body(k, x, passive, adding, blocked, done):
        w = target - tf.linalg.matvec(q_mat, x)                  # -∇: positive = worth entering
        never = tf.fill(tf.shape(w), tf.constant(-float("inf"), tf.float64))
        candidates = tf.where(passive | blocked, never, w)
        best = tf.reduce_max(candidates, axis=1)
        converged = adding & ~(best > tol)
        live = ~done & ~converged
        add = adding & live
        entering = tf.one_hot(tf.argmax(candidates, axis=1), m, on_value=True,
                              off_value=False) & add[:, None]
        trial = passive | entering
        s = _face_solution(q_mat, target, trial)
        # Rounding can make the entering index non-positive: drop and block it (x unchanged).
        bad_entry = tf.reduce_any(entering & (s <= 0), axis=1)
        feasible = tf.reduce_all(~trial | (s > 0), axis=1)
        # Step back from x towards s until the first passive index reaches 0.
        shrink = trial & (s <= 0) & (x - s > 0)
        ratio = tf.where(shrink, x / tf.where(shrink, x - s, tf.ones_like(s)),
                         tf.fill(tf.shape(s), tf.constant(float("inf"), tf.float64)))
        alpha = tf.reduce_min(ratio, axis=1, keepdims=True)
        alpha = tf.where(tf.math.is_finite(alpha), alpha, tf.zeros_like(alpha))
        hit = tf.one_hot(tf.argmin(ratio, axis=1), m, on_value=True,
                         off_value=False) & tf.math.is_finite(ratio)
        stepped = tf.maximum(tf.where(hit, tf.zeros_like(x), x + alpha * (s - x)), 0.0)

        accept = live & ~bad_entry & feasible
        back = live & ~bad_entry & ~feasible
        stay = ~live | bad_entry
        x = tf.where(accept[:, None], s, tf.where(back[:, None], stepped, x))
        passive = tf.where(accept[:, None], trial,
                           tf.where(back[:, None], trial & (stepped > 0), passive))
        blocked = tf.where(stay[:, None], blocked | (entering & bad_entry[:, None]),
                           tf.zeros_like(blocked))
        adding = tf.where(back, False, tf.where(accept | bad_entry, True, adding))
        return k + 1, x, passive, adding, blocked, done | converged

    b = tf.shape(c)[0]
    flags = tf.zeros([b, m], tf.bool)
    state = (tf.constant(0), tf.zeros([b, m], tf.float64), flags, tf.ones([b], tf.bool), flags,
             tf.zeros([b], tf.bool))
    _, x, *_ = tf.while_loop(
        lambda k, x, p, a, bl, done: (k < max_iter) & ~tf.reduce_all(done), body, state)
    x = tf.where(finite[:, None], x, tf.fill(tf.shape(x), tf.constant(float("nan"), tf.float64)))
    return tf.cast(x, out_dtype)


def min_norm_weights(gram, max_iter=250):
    """``[m]`` simplex weights ``α`` minimising ``αᵀ G α`` (``gram`` ``G`` ``[m, m]`` PSD).

    Exact (see the module docstring); float32 out unless ``gram`` is float64.
    """
    gram = tf.convert_to_tensor(gram)
    out_dtype = tf.float64 if gram.dtype == tf.float64 else tf.float32
    g = tf.cast(gram, tf.float64)
    m = g.shape[-1]
    size = tf.reduce_max(tf.abs(tf.linalg.diag_part(g)))   # α is scale-invariant: G to 11ᵀ's scale
    g = g / tf.where(size > 0, size, tf.ones_like(size))
    x = nonnegative_qp(g + tf.ones([m, m], tf.float64), -tf.ones([1, m], tf.float64), max_iter)[0]
    return tf.cast(x / tf.reduce_sum(x), out_dtype)


def dual_cone_weights(gram, lower, max_iter=250):
    """``[k, m]``: row ``r`` is ``argmin_{v >= lower[r]} vᵀ G v`` (``lower`` ``[k, m]``).

    ``sum_j v_j g_j`` is the projection of ``sum_j lower[r, j] g_j`` onto the
    dual cone ``{d : <g_i, d> >= 0 for all i}``. Output dtype as ``lower``'s.
    """
    lower = tf.convert_to_tensor(lower)
    g = tf.cast(gram, tf.float64)
    u = tf.cast(lower, tf.float64)
    z = nonnegative_qp(g, tf.linalg.matmul(u, g), max_iter)   # rows: (G u)ᵀ = uᵀG
    return tf.cast(u + z, lower.dtype if lower.dtype.is_floating else tf.float32)
