"""k-means segments of products and users, with cluster-quality metadata."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenslake.vectors.encoder import normalize


@dataclass
class Segments:
    labels: np.ndarray
    centroids: np.ndarray
    metadata: dict


def kmeans_segments(vectors: np.ndarray, k: int, seed: int = 0, silhouette_sample: int = 2000) -> Segments:
    """k-means (cosine: on unit vectors) with quality metadata: inertia, silhouette on a sample (cosine), cluster
    sizes (min/max/share of the largest). k is capped at the number of distinct vectors."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = normalize(vectors)
    n = len(x)
    if n == 0:
        raise ValueError("no vectors to cluster")
    k = max(1, min(k, len(np.unique(x.round(6), axis=0))))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
    labels = km.labels_.astype(np.int32)
    sizes = np.bincount(labels, minlength=k)
    silhouette = None
    if 1 < k < n:
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=min(n, silhouette_sample), replace=False)
        if len(np.unique(labels[idx])) > 1:
            silhouette = float(silhouette_score(x[idx], labels[idx], metric="cosine"))
    meta = {"k": k, "vectors": n, "inertia": float(km.inertia_), "silhouette": silhouette,
            "silhouette_sample": int(min(n, silhouette_sample)), "size_min": int(sizes.min()),
            "size_max": int(sizes.max()), "largest_share": float(sizes.max() / n), "iterations": int(km.n_iter_)}
    return Segments(labels, normalize(km.cluster_centers_), meta)
