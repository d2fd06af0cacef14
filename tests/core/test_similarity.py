"""Linear CKA and nearest-neighbour agreement checked against independent computations."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from core.stats.similarity import (SIMILARITY_COLUMNS, knn_agreement, knn_indices, linear_cka, neighbour_overlap,
                                   similarity_rows)


def hsic_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """CKA in Kornblith et al.'s HSIC form with explicit n x n Gram matrices (float64)."""
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T
    Kc, Lc = H @ K @ H, H @ L @ H

    def hsic(A, B):
        return np.trace(A @ B) / (n - 1) ** 2

    return hsic(Kc, Lc) / np.sqrt(hsic(Kc, Kc) * hsic(Lc, Lc))


def test_cka_hand_worked():
    # three images, 1-d and 2-d features: centred x = (-1, 0, 1); Y centred = [[-1,1],[0,-2],[1,1]]
    X = np.array([[1.0], [2.0], [3.0]])
    Y = np.array([[0.0, 2.0], [1.0, -1.0], [2.0, 2.0]])
    # Y^T x = (2, 0) -> ||.||^2 = 4; X^T X = 2; Y^T Y = [[2, 0], [0, 6]] -> ||.||_F = sqrt(40)
    expected = 4 / (2 * np.sqrt(40))
    assert linear_cka(X, Y) == pytest.approx(expected, rel=1e-6)
    assert hsic_cka(X, Y) == pytest.approx(expected, rel=1e-12)


def test_cka_matches_gram_form_on_random_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    Y = X @ rng.normal(size=(8, 5)) + 0.5 * rng.normal(size=(60, 5))
    assert linear_cka(X, Y) == pytest.approx(hsic_cka(X, Y), rel=1e-5)
    Z = rng.normal(size=(60, 12))
    assert linear_cka(X, Z) == pytest.approx(hsic_cka(X, Z), rel=1e-5)
    assert linear_cka(X, Y) == pytest.approx(linear_cka(Y, X), rel=1e-6)


def test_cka_of_a_matrix_with_itself_is_one():
    X = np.random.default_rng(1).normal(size=(200, 16))
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-6)


def test_cka_invariances():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 6)) * np.array([5, 3, 2, 1, 0.5, 0.1])
    Y = X[:, :4] + 0.3 * rng.normal(size=(100, 4))
    base = linear_cka(X, Y)
    Q = ortho_group.rvs(6, random_state=3)
    assert linear_cka(X @ Q, Y) == pytest.approx(base, rel=1e-5)  # orthogonal transform
    assert linear_cka(7.5 * X, Y) == pytest.approx(base, rel=1e-5)  # isotropic scaling
    assert linear_cka(X + 100.0, Y) == pytest.approx(base, rel=1e-4)  # a shift (features are centred)
    # a general invertible linear map changes it
    A = np.diag([1, 1, 1, 1, 30.0, 100.0]) @ rng.normal(size=(6, 6))
    assert abs(np.linalg.det(A)) > 1e-6
    assert abs(linear_cka(X @ A, Y) - base) > 0.05
    assert linear_cka(X @ A, Y) == pytest.approx(hsic_cka(X @ A, Y), rel=1e-5)


def test_cka_degenerate():
    assert np.isnan(linear_cka(np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 2))))
    assert np.isnan(linear_cka(np.ones((1, 3)), np.ones((1, 2))))
    with pytest.raises(ValueError):
        linear_cka(np.ones((4, 3)), np.ones((5, 3)))


def test_knn_indices_match_brute_force():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 7))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    expected = np.argsort(-S, axis=1)[:, :4]
    # tiny blocks: the chunked path must give the same neighbours
    got = knn_indices(X, 4, block_elements=120)
    assert np.array_equal(np.sort(got, axis=1), np.sort(expected, axis=1))
    assert not np.any(got == np.arange(50)[:, None])


def test_knn_agreement_on_constructed_data():
    # points on a circle: angle neighbours; the second space keeps them, the third shuffles half of them
    n = 12
    t = 2 * np.pi * np.arange(n) / n + 0.01 * np.arange(n) ** 1.5
    X = np.c_[np.cos(t), np.sin(t)]
    assert np.allclose(knn_agreement(X, 3 * X, k=2), 1.0)
    # a rotation keeps cosine neighbourhoods
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.allclose(knn_agreement(X, X @ R, k=2), 1.0)
    # hand-built neighbour lists: overlaps 2/3, 0, 1/3
    na = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3]])
    nb = np.array([[3, 2, 0], [4, 5, 6], [1, 4, 5]])
    assert np.allclose(neighbour_overlap(na, nb), [2 / 3, 0, 1 / 3])


def test_knn_agreement_against_set_intersection():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 5))
    Y = X + 0.8 * rng.normal(size=(40, 5))
    k = 5
    got = knn_agreement(X, Y, k)

    def nn(Z):
        Zn = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        S = Zn @ Zn.T
        np.fill_diagonal(S, -np.inf)
        return [set(np.argsort(-row)[:k]) for row in S]

    expected = [len(a & b) / k for a, b in zip(nn(X), nn(Y))]
    assert np.allclose(got, expected)
    assert 0 < got.mean() < 1


def test_similarity_rows_overall_and_per_class():
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1, 2], [10, 15, 1])
    X = rng.normal(size=(26, 6))
    feats = {"a": X, "b": X @ ortho_group.rvs(6, random_state=1), "c": rng.normal(size=(26, 4))}
    rows = similarity_rows(feats, y, ["cat", "dog", "owl"], k=4)
    assert all(list(r) == SIMILARITY_COLUMNS for r in rows)
    overall = {(r["backbone_a"], r["backbone_b"]): r for r in rows if r["scope"] == "overall"}
    assert set(overall) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert overall[("a", "b")]["cka"] == pytest.approx(1.0, abs=1e-5)
    assert overall[("a", "b")]["knn_agreement"] == pytest.approx(1.0)
    assert overall[("a", "c")]["cka"] == pytest.approx(hsic_cka(X, feats["c"]), rel=1e-5)
    per = {r["class"]: r for r in rows if r["scope"] == "class" and r["backbone_b"] == "c" and r["backbone_a"] == "a"}
    assert per["dog"]["n_images"] == 15
    assert per["dog"]["cka"] == pytest.approx(hsic_cka(X[y == 1], feats["c"][y == 1]), rel=1e-5)
    agree = knn_agreement(X, feats["c"], 4)
    assert per["cat"]["knn_agreement"] == pytest.approx(agree[y == 0].mean())
    assert np.isnan(per["owl"]["cka"])  # one image: no centred variance
    # the overall agreement is the mean over images, so the class means recombine to it
    total = sum(r["knn_agreement"] * r["n_images"] for r in per.values()) / 26
    assert total == pytest.approx(overall[("a", "c")]["knn_agreement"])


def test_cka_small_classes_use_the_gram_form_with_the_same_value():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(6, 40)), rng.normal(size=(6, 30))  # fewer images than features
    assert linear_cka(X, Y) == pytest.approx(hsic_cka(X, Y), rel=1e-5)
    Q = ortho_group.rvs(40, random_state=2)
    assert linear_cka(X @ Q, 3 * Y) == pytest.approx(linear_cka(X, Y), rel=1e-5)


def test_similarity_rows_without_neighbours():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20, 4))
    Y = X + rng.normal(size=X.shape)
    rows = similarity_rows({"a": X, "b": Y}, np.arange(20) % 2, ["x", "y"], k=0)
    assert all(r["knn_k"] == 0 and np.isnan(r["knn_agreement"]) for r in rows)
    assert rows[0]["cka"] == pytest.approx(hsic_cka(X, Y), rel=1e-5)
