"""Representation similarity of two embedding backbones on the same images.

Two measures, both on the image embeddings the sweep already holds:

* **Linear CKA** (Kornblith et al., 2019, "Similarity of Neural Network Representations
  Revisited"): with column-centred features X [n, p] and Y [n, q],
  CKA = HSIC(XX^T, YY^T) / sqrt(HSIC(XX^T, XX^T) HSIC(YY^T, YY^T)), which for linear kernels
  equals ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F). The feature-space form needs only
  [p, q]-sized products, never an [n, n] Gram matrix, so 20,000 images cost a few
  matrix products of the embedding width (a class of fewer images than features uses
  the equal, then cheaper, Gram form). CKA is invariant to orthogonal transforms and
  isotropic scaling of either side, not to general invertible linear maps.
* **Nearest-neighbour agreement**: for each image, the share of its k nearest neighbours
  (cosine similarity, the image itself excluded) that are the same images in both
  backbones; averaged over images. The similarity matrix is built a block of rows at a
  time, so memory stays bounded whatever the number of images.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import torch

KNN_K = 10  # neighbours per image (the default of similarity.csv's knn_k)
KNN_BLOCK_ELEMENTS = 1 << 24  # entries of one block of the [rows, n] similarity matrix (64 MB of float32)

SIMILARITY_COLUMNS = ["backbone_a", "backbone_b", "scope", "class", "n_images", "cka", "knn_k", "knn_agreement"]


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA of two feature matrices over the same n images (rows); NaN when either is constant."""
    X, Y = np.asarray(X), np.asarray(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"CKA needs the same images on both sides ({X.shape[0]} vs {Y.shape[0]} rows)")
    n, p, q = X.shape[0], X.shape[1], Y.shape[1]
    if n < 2:
        return float("nan")
    if n * (p + q) < p * p + q * q + p * q:
        # fewer images than features (a class's images): the same three numbers from the n x n Gram
        # matrices, <K, L>_F = ||Y^T X||_F^2 and ||K||_F = ||X^T X||_F, at the smaller cost; numpy in
        # float64 (torch's thread pool costs more than such small products)
        xc = X - X.mean(axis=0, dtype=np.float64)
        yc = Y - Y.mean(axis=0, dtype=np.float64)
        K, L = xc @ xc.T, yc @ yc.T
        cross, self_x, self_y = float((K * L).sum()), float(np.linalg.norm(K)), float(np.linalg.norm(L))
    else:
        # the feature-space form, float32 on torch's threads; each side scaled to unit Frobenius
        # norm first (CKA is scale-free), so float32 never overflows
        xc = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        xc = xc - torch.from_numpy(X.mean(axis=0, dtype=np.float64).astype(np.float32))
        yc = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32))
        yc = yc - torch.from_numpy(Y.mean(axis=0, dtype=np.float64).astype(np.float32))
        nx, ny = torch.linalg.norm(xc), torch.linalg.norm(yc)
        if nx == 0 or ny == 0:
            return float("nan")
        xc, yc = xc / nx, yc / ny
        cross = float(torch.linalg.norm(yc.T @ xc).double() ** 2)
        self_x = float(torch.linalg.norm(xc.T @ xc))
        self_y = float(torch.linalg.norm(yc.T @ yc))
    if not (self_x > 0 and self_y > 0):
        return float("nan")
    return cross / (self_x * self_y)


def knn_indices(X: np.ndarray, k: int = KNN_K, block_elements: int = KNN_BLOCK_ELEMENTS) -> np.ndarray:
    """[n, k] indices of each row's k nearest other rows by cosine similarity (most similar first)."""
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    n = x.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    if torch.cuda.is_available():  # the n x n products are the whole cost; a GPU takes them in stride
        x = x.to("cuda")
    x = torch.nn.functional.normalize(x, dim=1)
    rows = max(1, block_elements // max(n, 1))
    out = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, rows):
        b = min(a + rows, n)
        s = x[a:b] @ x.T
        rows_here = torch.arange(b - a, device=x.device)
        s[rows_here, rows_here + a] = -float("inf")  # never one's own neighbour
        out[a:b] = torch.topk(s, k, dim=1).indices.cpu().numpy()
    return out


def neighbour_overlap(na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Per row, the share of ``na``'s neighbours that are also in ``nb`` (both [n, k], distinct per row)."""
    if na.shape != nb.shape:
        raise ValueError(f"neighbour lists differ in shape ({na.shape} vs {nb.shape})")
    k = na.shape[1]
    if k == 0:
        return np.full(na.shape[0], np.nan)
    both = np.sort(np.concatenate([na, nb], axis=1), axis=1)
    return (both[:, 1:] == both[:, :-1]).sum(axis=1) / k


def knn_agreement(X: np.ndarray, Y: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Per image, the share of its k nearest neighbours common to both feature spaces."""
    return neighbour_overlap(knn_indices(X, k), knn_indices(Y, k))


def similarity_rows(features: Mapping[str, np.ndarray], y: np.ndarray, classes: Sequence[str],
                    k: int = KNN_K, cancel: Optional[object] = None) -> list[dict]:
    """similarity.csv rows for every pair of backbones: one ``overall`` row, then one per class.

    ``features`` maps each backbone to its [n, d] image embeddings, rows being the same images
    in the same order; ``y`` the class index of each image. A class row's CKA is computed on
    that class's images alone (NaN under two images); its kNN agreement is the mean over
    the class's images of their agreement, neighbours being searched among all images. With
    ``k = 0`` no neighbours are searched (the n x n search is most of the cost) and
    ``knn_agreement`` is empty.
    """
    names = list(features)
    y = np.asarray(y)
    n = len(y)
    kk = min(k, n - 1) if n > 1 and k > 0 else 0
    neigh = {}
    for name in names:
        if cancel is not None:
            cancel.raise_if_cancelled()
        neigh[name] = knn_indices(features[name], kk) if kk else np.zeros((n, 0), dtype=np.int64)
    members = [np.flatnonzero(y == ci) for ci in range(len(classes))]
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if cancel is not None:
                cancel.raise_if_cancelled()
            agree = neighbour_overlap(neigh[a], neigh[b])  # NaN per image with k = 0 (no search)
            rows.append({"backbone_a": a, "backbone_b": b, "scope": "overall", "class": "", "n_images": n,
                         "cka": linear_cka(features[a], features[b]), "knn_k": kk,
                         "knn_agreement": float(agree.mean()) if n else float("nan")})
            for ci, c in enumerate(classes):
                m = members[ci]
                if len(m) == 0:
                    continue
                rows.append({"backbone_a": a, "backbone_b": b, "scope": "class", "class": c, "n_images": len(m),
                             "cka": linear_cka(features[a][m], features[b][m]), "knn_k": kk,
                             "knn_agreement": float(agree[m].mean())})
    return rows
