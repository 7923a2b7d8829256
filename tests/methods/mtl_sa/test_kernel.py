"""MTL-SA's weights checked against independent computations (supplementary G–H, §4)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import ot
import pytest

from methods import ArtifactCollector, MetricsCollector, RunContext, get_method
from methods.data import Dataset, load_dataset
from methods.mtl_sa.weights import (
    SampleWeights,
    cluster_distances,
    combine,
    local_density,
    temper,
)


def _brute_density(features: np.ndarray, groups: np.ndarray, kappa: float) -> np.ndarray:
    out = np.zeros(len(features))
    for g in set(groups.tolist()):
        idx = [i for i in range(len(features)) if groups[i] == g]
        dist = [[float(((features[i] - features[j]) ** 2).sum()) for j in idx] for i in idx]
        entries = sorted(d for row in dist for d in row)
        cutoff = entries[math.ceil(kappa * len(entries)) - 1]  # position ⌈κ n²⌉, 1-based
        rho = [sum(1 for d in row if d < cutoff) for row in dist]
        for i, r in zip(idx, rho):
            out[i] = r / max(rho)
    return out


@pytest.mark.parametrize("kappa", [0.2, 0.6, 0.9])
def test_local_density_matches_brute_force(kappa: float) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 5))
    groups = rng.integers(0, 3, 40)
    assert np.allclose(
        local_density(features, groups, kappa), _brute_density(features, groups, kappa)
    )


def test_density_is_high_in_the_crowd_low_for_the_outlier() -> None:
    features = np.array([[0.0], [0.1], [0.2], [0.15], [5.0]])
    wd = local_density(features, np.zeros(5, dtype=int), 0.6)
    assert wd.max() == 1.0 and wd[4] == wd.min() and wd[4] < 0.5


def test_emd_matches_pot_and_the_forced_plan() -> None:
    rng = np.random.default_rng(1)
    means_b, means_a = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    pi = rng.random(6)
    pi /= pi.sum()
    got = cluster_distances(means_b, means_a, pi, "emd")
    d = ((means_b[:, None] - means_a[None]) ** 2).sum(-1)
    for k in range(4):  # mass 1 against a mixture of mass 1: EMD = ot.emd2 = Σ π d
        assert got[k] == pytest.approx(ot.emd2(np.array([1.0]), pi, d[k : k + 1]))
        assert got[k] == pytest.approx(float(pi @ d[k]))


def test_one_target_cluster_at_distance_d_gives_d() -> None:
    means_a = np.array([[0.0, 0.0]])
    means_b = np.array([[3.0, 4.0]])  # squared distance 25
    assert cluster_distances(means_b, means_a, np.array([1.0]), "emd")[0] == pytest.approx(25.0)
    assert cluster_distances(means_b, means_a, np.array([1.0]), "mmd")[0] == pytest.approx(25.0)


def test_mmd_is_the_distance_to_domain_a_s_mean() -> None:
    means_a = np.array([[0.0], [2.0]])
    pi = np.array([0.5, 0.5])
    means_b = np.array([[1.0]])
    assert cluster_distances(means_b, means_a, pi, "mmd")[0] == pytest.approx(0.0)
    assert cluster_distances(means_b, means_a, pi, "emd")[0] == pytest.approx(1.0)


def test_emd_and_mmd_weights_coincide_after_normalisation() -> None:
    """EMD d_k = MMD d_k + Σ_j π_j‖μ_j − μ̄‖² (a constant), so w / max w is the same."""
    from methods.mtl_sa.weights import domain_weights

    rng = np.random.default_rng(3)
    b, a = rng.normal(size=(80, 4)) + 1.0, rng.normal(size=(90, 4))
    emd = domain_weights(b, a, 4, 5, 0.1, seed=0, how="emd")
    mmd = domain_weights(b, a, 4, 5, 0.1, seed=0, how="mmd")
    assert not np.allclose(emd, mmd)  # the raw distances differ ...
    assert np.allclose(emd - mmd, (emd - mmd)[0])  # ... by one constant
    zeros = np.zeros(80)
    assert np.allclose(combine("only_g", zeros, zeros, emd), combine("only_g", zeros, zeros, mmd))


def test_temperature_flattens_at_two_sharpens_below_one() -> None:
    probs = np.array([[0.8, 0.2], [0.5, 0.5]])
    assert np.allclose(temper(probs, 2.0)[0], np.array([2, 1]) / 3)  # √0.8 : √0.2 = 2 : 1
    assert np.allclose(temper(probs, 1.0), probs)
    assert np.allclose(temper(probs, 0.5)[0], np.array([16, 1]) / 17)
    assert np.allclose(temper(probs, 2.0).sum(1), 1.0)


@pytest.mark.parametrize("mode", ["sa", "only_c", "only_d", "only_g", "only_g_mmd"])
def test_weights_lie_in_0_1_with_maximum_1(mode: str) -> None:
    rng = np.random.default_rng(2)
    logs = [np.log(rng.uniform(0.1, 1.0, 50)) for _ in range(2)] + [-rng.uniform(0, 80, 50)]
    w = combine(mode, *logs)
    assert w.min() >= 0.0 and w.max() == pytest.approx(1.0)


def test_constant_modes() -> None:
    logs = [np.zeros(3)] * 3
    assert combine("zero", *logs).tolist() == [0, 0, 0] == combine("wf", *logs).tolist()
    assert combine("one", *logs).tolist() == [1, 1, 1]
    assert combine("half", *logs).tolist() == [0.5, 0.5, 0.5]


def _weights(w: np.ndarray, temperature: float) -> SampleWeights:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    return SampleWeights(
        "a",
        np.arange(2),
        temper(probs, temperature),
        probs.argmax(1),
        np.ones(2),
        np.ones(2),
        np.ones(2),
        w,
    )


def test_w_zero_is_exactly_distillation_with_t_and_w_one_pseudo_labels() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    zero = _weights(np.zeros(2), 2.0)
    assert np.array_equal(zero.targets, temper(probs, 2.0))
    one = _weights(np.ones(2), 2.0)
    assert np.array_equal(one.targets, np.array([[1, 0, 0], [0, 0, 1]]))
    half = _weights(np.full(2, 0.5), 2.0).targets
    assert np.allclose(half, 0.5 * one.targets + 0.5 * zero.targets)


@pytest.fixture(scope="module")
def pair() -> Dataset:
    return load_dataset("digit_pair")


def _run(pair: Dataset, mode: str, epochs: int = 4) -> tuple[dict, ArtifactCollector]:
    spec = get_method("mtl_sa")
    config = spec.make_config(
        {
            "domain": "a",
            "task_a": "digit",
            "domain_b": "b",
            "task_b": "photo",
            "backbone": "small_cnn",
            "epochs": epochs,
            "init_epochs": 1,
            "lr": 1e-3,
            "mode": mode,
        }
    )
    config.check_data(pair)
    artifacts = ArtifactCollector()
    final = spec.train(
        config,
        pair,
        RunContext(seed=0, report=MetricsCollector(), artifact=artifacts, num_threads=1),
    )
    return final, artifacts


def test_kernel_keeps_each_dataset_s_last_weights(pair: Dataset) -> None:
    final, artifacts = _run(pair, "sa")
    table = artifacts.tables["sample_weights"]
    assert set(table["domain"]) == {"a", "b"}
    for domain, task, classes in (("a", "photo", 2), ("b", "digit", 10)):
        rows = table["domain"] == domain
        assert set(table["task"][rows]) == {task}
        assert sorted(table["row"][rows].tolist()) == pair.domain(domain).indices("train").tolist()
        w = table["w"][rows]
        assert w.min() >= 0 and w.max() == pytest.approx(1.0)
        assert np.allclose(
            w,
            table["wc"][rows]
            * table["wd"][rows]
            * table["wg"][rows]
            / (table["wc"][rows] * table["wd"][rows] * table["wg"][rows]).max(),
        )
        assert set(table["pseudo"][rows].tolist()) <= set(range(classes))
    # both tasks are reported on their own dataset's test split
    assert {"test/acc/digit", "test@b/acc/photo", "test/mean_acc"} <= set(final)


@pytest.mark.parametrize("mode", ["all_in_one", "stl"])
def test_joint_baselines_compute_no_weights(pair: Dataset, mode: str) -> None:
    final, artifacts = _run(pair, mode, epochs=2)
    assert not artifacts.tables
    assert 0.0 <= final["test@b/acc/photo"] <= 1.0


@pytest.mark.parametrize("domain_norm", [True, False])
def test_each_dataset_keeps_its_own_batch_norm_statistics(pair: Dataset, domain_norm: bool) -> None:
    """In `stl` mode task A's network never learns from dataset B, but it runs on B's
    batches; with statistics per dataset, what B holds cannot change task A's
    numbers, with one shared set (before `domain_norm`) it does."""
    b = pair.domain("b")
    other = replace(pair, domains={**pair.domains, "b": replace(b, inputs=255 - b.inputs)})
    spec = get_method("mtl_sa")
    values = {
        "domain": "a", "task_a": "digit", "domain_b": "b", "task_b": "photo",
        "backbone": "small_cnn", "epochs": 2, "lr": 1e-3, "mode": "stl",
        "domain_norm": domain_norm,
    }  # fmt: skip

    def task_a(data: Dataset) -> list[dict[str, float]]:
        history = MetricsCollector()
        spec.train(spec.make_config(values), data, RunContext(seed=0, report=history))
        return [{k: v for k, v in h.items() if k.endswith("/digit")} for h in history.history]

    same = task_a(pair) == task_a(other)
    assert same is domain_norm
