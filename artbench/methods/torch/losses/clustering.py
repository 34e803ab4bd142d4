"""Auxiliary clustering losses of SilkNet §3.2: semantic (eq. 6), colour (eq. 7) and self-similarity (eq. 8).

All losses take the L2-normalised clustering-head features f(x) (the caller normalises) and use the Euclidean
feature distance Δ. Δ is computed from explicit differences (exactly 0 for identical features) with a square
root whose gradient is 0, not NaN, at zero distance.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance Δ along the last dimension (broadcasting); value and gradient 0 where a == b."""
    sq = (a - b).square().sum(-1)
    return torch.where(sq > _EPS, sq.clamp(min=_EPS).sqrt(), 0.0)


def _zero(features: torch.Tensor) -> torch.Tensor:
    """A zero loss connected to the graph of ``features``."""
    return features.sum() * 0.0


def semantic_similarity_loss(
    features: torch.Tensor,
    targets: torch.Tensor,
    max_triplets: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L_sem of eq. 6: a triplet loss whose margin is the guaranteed difference in semantic similarity.

    For samples i, o, Y_sem(i, o) is the fraction of the M targets whose labels are known for both and
    equal, and u(i, o) the fraction with at least one missing label. Every ordered triplet (i, p, n) of
    distinct samples with margin M_ipn = Y_sem(i, p) - (Y_sem(i, n) + u(i, n)) > 0 contributes
    max(M_ipn + Δ(i, p) - Δ(i, n), 0); the loss is the mean over these N_t triplets, zero when there are none.

    A background label (§4: known, but outside the classes of interest) is a known label here, encoded as the
    extra class K_m like in the classification loss, so two background labels count as equal. Background pools
    several excluded classes; callers who want such pairs treated as unknown can map background to ``-1``.

    All triplets are formed at once by ``[N, N, N]`` broadcasting, so memory grows as N^3 (a few tensors of
    N^3 elements; about 17 M elements each for N = 256).

    Args:
        features: ``[N, D]`` L2-normalised clustering features.
        targets: ``[N, M]`` int64 labels, ``-1`` for missing.
        max_triplets: sampling cap; when more valid triplets exist, this many are drawn uniformly without
            replacement (with ``generator``) and the loss is their mean. ``None`` uses every valid triplet.
        generator: random generator for the sampling cap; its device is used to draw the sample.
    """
    if targets.dim() != 2 or targets.shape[0] != len(features) or targets.shape[1] < 1:
        raise ValueError(f"targets must be [N, M>=1] with N = {len(features)}, got {tuple(targets.shape)}")
    if max_triplets is not None and max_triplets < 1:
        raise ValueError(f"max_triplets must be >= 1 or None, got {max_triplets}")
    n, m = targets.shape
    known = targets >= 0
    both = known.unsqueeze(1) & known.unsqueeze(0)  # [N, N, M]
    equal = (both & (targets.unsqueeze(1) == targets.unsqueeze(0))).sum(-1)  # M · Y_sem
    unknown = (~both).sum(-1)  # M · u
    margin_m = equal.unsqueeze(2) - (equal + unknown).unsqueeze(1)  # M · M_ipn, exact in integers
    distinct = ~torch.eye(n, dtype=torch.bool, device=targets.device)
    valid = (margin_m > 0) & distinct.unsqueeze(2) & distinct.unsqueeze(1) & distinct.unsqueeze(0)
    dist = _distance(features.unsqueeze(1), features.unsqueeze(0))
    terms = (margin_m.to(dist.dtype) / m + dist.unsqueeze(2) - dist.unsqueeze(1)).clamp(min=0)
    if max_triplets is None:  # no host synchronisation on this path
        return torch.where(valid, terms, 0.0).sum() / valid.sum().clamp(min=1)
    index = valid.flatten().nonzero().squeeze(1)
    if len(index) == 0:
        return _zero(features)
    if len(index) > max_triplets:
        device = generator.device if generator is not None else features.device
        pick = torch.randperm(len(index), generator=generator, device=device)[:max_triplets]
        index = index[pick.to(index.device)]
    return terms.flatten()[index].mean()


def colour_similarity_loss(features: torch.Tensor, colour_features: torch.Tensor) -> torch.Tensor:
    """L_co of eq. 7: mean over all pairs i < o of |Δ(i, o) - (1 - ρ(i, o))|.

    ρ is the Pearson (normalised cross-) correlation of the colour feature vectors h(x_i), h(x_o). A
    constant colour vector (zero variance) has undefined correlation; ρ = 0 is used for every pair involving
    one (colour margin 1). The max(0, ·) of eq. 7 is a no-op on an absolute value and is omitted. Zero for
    N < 2.

    Args:
        features: ``[N, D]`` L2-normalised clustering features.
        colour_features: ``[N, C]`` colour feature vectors h(x) (see artbench.methods.torch.colour).
    """
    if colour_features.dim() != 2 or len(colour_features) != len(features):
        raise ValueError(f"colour_features must be [N, C] with N = {len(features)}, got {tuple(colour_features.shape)}")
    n = len(features)
    if n < 2:
        return _zero(features)
    centred = colour_features.float() - colour_features.float().mean(1, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 0, centred / norm.clamp(min=_EPS), 0.0)
    rho = (unit @ unit.T).clamp(-1.0, 1.0)
    # Pairs by broadcasting and a mask, not by gathering features[i], features[o]: the backward of a gather
    # with repeated indices accumulates in a thread-dependent order on CPU, which made runs unrepeatable.
    dist = _distance(features.unsqueeze(1), features.unsqueeze(0))
    upper = torch.ones(n, n, dtype=torch.bool, device=features.device).triu(1)
    return torch.where(upper, (dist - (1.0 - rho)).abs(), 0.0).sum() / (n * (n - 1) // 2)


def self_similarity_loss(features: torch.Tensor, features_augmented: torch.Tensor) -> torch.Tensor:
    """L_slf of eq. 8: mean over i of Δ(f(x_i), f(x'_i)), x'_i an augmentation of x_i (zero for N = 0)."""
    if features.shape != features_augmented.shape:
        raise ValueError(f"feature shapes differ: {tuple(features.shape)} vs {tuple(features_augmented.shape)}")
    if len(features) == 0:
        return _zero(features) + _zero(features_augmented)
    return _distance(features, features_augmented).mean()
