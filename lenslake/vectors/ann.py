"""The in-memory nearest-neighbour index serving reads: an inverted-file (IVF) index over one model version's vectors
of a published LanceDB version, exact cosine within the probed lists.

Why not query LanceDB per request: measured here (2 cores), a LanceDB vector query costs about 2 ms through the
sync Python API and 1.2 ms through the async one even on a one-row table, so a 100k-vector search cannot meet a
2 ms p99 that way; LanceDB stays the store of record, the batch similar-items path, and the source this index is
loaded from (``from_store``), refreshed when the published tag changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenslake.vectors.encoder import normalize


@dataclass
class IvfIndex:
    keys: np.ndarray            # (n,) object: the key of each vector, in list order
    vectors: np.ndarray         # (n, d) float32, unit-norm, grouped by list
    centroids: np.ndarray       # (nlist, d) float32
    offsets: np.ndarray         # (nlist + 1,) start of each list in ``vectors``
    nprobe: int = 16

    @classmethod
    def build(cls, vectors: np.ndarray, keys, nlist: int | None = None, nprobe: int | None = None,
              seed: int = 0, train_size: int | None = None, iterations: int = 12) -> IvfIndex:
        """Train ``nlist`` centroids (default about 2·sqrt(n)) by spherical k-means on a sample (32 vectors per
        list) and group the vectors by their nearest centroid. ``nprobe`` lists are scanned per query (default
        nlist/16, at least 16: recall@10 about 0.97 on the real product vectors, 0.99 on 100k synthetic ones)."""
        x = normalize(vectors)
        n = len(x)
        nlist = nlist or max(1, min(n, round(2 * float(np.sqrt(n)))))
        rng = np.random.default_rng(seed)
        sample = x[rng.choice(n, size=min(n, train_size or nlist * 32), replace=False)]
        centroids = spherical_kmeans(sample, nlist, iterations, rng)
        assign = _nearest(x, centroids)
        order = np.argsort(assign, kind="stable")
        offsets = np.zeros(nlist + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(assign, minlength=nlist))
        return cls(np.asarray(list(keys), dtype=object)[order], np.ascontiguousarray(x[order]), centroids, offsets,
                   nprobe or max(16, nlist // 16))

    @classmethod
    def from_store(cls, store, model_version: str, tag: str | None = None, **kwargs) -> IvfIndex:
        """Load one model version's vectors (at a tag, default the latest version) from a VectorStore."""
        from lenslake.vectors.store import vectors_of

        rows = store.rows(model_version, [store.key, "vector"], tag=tag)
        return cls.build(vectors_of(rows), rows.column(store.key).to_pylist(), **kwargs)

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, query: np.ndarray, k: int = 10, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest keys and their cosine scores, best first."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        q = q / (np.linalg.norm(q) or 1.0)
        nprobe = min(nprobe or self.nprobe, len(self.centroids))
        cs = self.centroids @ q
        probes = np.argpartition(-cs, nprobe - 1)[:nprobe] if nprobe < len(cs) else np.arange(len(cs))
        idx, scores = [], []
        for p in probes:
            s, e = self.offsets[p], self.offsets[p + 1]
            if e > s:
                scores.append(self.vectors[s:e] @ q)
                idx.append(np.arange(s, e))
        if not scores:
            return np.empty(0, dtype=object), np.empty(0, dtype=np.float32)
        scores, idx = np.concatenate(scores), np.concatenate(idx)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return self.keys[idx[top]], scores[top]


def _nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        out[start:start + chunk] = np.argmax(x[start:start + chunk] @ centroids.T, axis=1)
    return out


def spherical_kmeans(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """k unit centroids by cosine k-means (Lloyd); an emptied cluster is reseeded with a random vector."""
    centroids = x[rng.choice(len(x), size=k, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest(x, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        empty = np.bincount(assign, minlength=k) == 0
        sums[empty] = x[rng.choice(len(x), size=int(empty.sum()), replace=False)]
        centroids = normalize(sums)
    return centroids


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int = 10, chunk: int = 256) -> np.ndarray:
    """Row indexes of each query's k nearest vectors by cosine (brute force): the ground truth for recall."""
    q, x = normalize(queries), normalize(vectors)
    out = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), chunk):
        sims = q[start:start + chunk] @ x.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(found: list, truth: list, k: int = 10) -> float:
    """Mean share of the exact top-k that the approximate search returned."""
    return float(np.mean([len(set(list(f)[:k]) & set(list(t)[:k])) / k for f, t in zip(found, truth)]))
