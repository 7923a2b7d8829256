"""SOSELETO: the fused step against one backward pass per sample, α's direction and
range, the shared / separate classifier, the modes, the diagnostics and the
built-in noisy-label and transfer data."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods import ArtifactCollector, ConfigError, MetricsCollector, RunContext, get_method
from methods.core.backbones import build_backbone
from methods.core.errors import DataError
from methods.data import load_dataset
from methods.data.noise import confusion_matrix, corrupt, symmetric_matrix
from methods.soseleto.alpha_stats import accounted, group_means, noise_curve
from methods.soseleto.kernel import SoseletoConfig, _Soseleto
from methods.soseleto.step import (
    AlphaRule,
    directional_by_loop,
    directional_losses,
    soseleto_step,
)

TOY = {
    "task": "label",
    "clean_label": "true_label",
    "backbone": "shallow_mlp",
    "feature_dim": 4,
    "batch_size": 16,
    "target_batch_size": 16,
}


def _tiny_model(seed: int = 0) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    backbone = build_backbone("small_cnn", (3, 12, 12))
    head = nn.Linear(backbone.out_dim, 4)
    x = torch.randn(6, 3, 12, 12)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    return backbone, head, x, y


@pytest.mark.parametrize("train_mode", [False, True])
@pytest.mark.parametrize("through_head", [False, True])
def test_fast_directional_derivatives_equal_one_backward_per_sample(
    train_mode: bool, through_head: bool
) -> None:
    backbone, head, x, y = _tiny_model()
    backbone.train(train_mode)
    gen = torch.Generator().manual_seed(1)
    v = {n: torch.randn(p.shape, generator=gen) for n, p in backbone.named_parameters()}
    w = {n: torch.randn(p.shape, generator=gen) for n, p in head.named_parameters()}
    head_tangent = w if through_head else None
    losses, fast = directional_losses(backbone, head, x, y, v, head_tangent)
    slow = directional_by_loop(backbone, head, x, y, v, head_tangent)
    assert fast.shape == (6,)
    torch.testing.assert_close(fast, slow.detach(), rtol=1e-4, atol=1e-5)
    # the primal losses are the ordinary per-sample losses, with a graph to θ
    expected = F.cross_entropy(head(backbone(x)), y, reduction="none")
    torch.testing.assert_close(losses.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    assert losses.requires_grad


def _target_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return torch.randn(5, 3, 12, 12, generator=gen), torch.tensor([0, 1, 2, 0, 1])


def _sgd_step(
    setting: str, alpha: torch.Tensor, rule: AlphaRule
) -> tuple[dict[str, nn.Module], dict[str, nn.Module], torch.Tensor, torch.Tensor, float]:
    """One soseleto_step on a tiny model; returns the modules before / after, the
    new α, the expected α (from the per-sample loop) and the lr."""
    backbone, head, x, y = _tiny_model()
    backbone.eval()  # batch statistics off: per-sample losses independent of each other
    target_head = head if setting == "noisy" else nn.Linear(backbone.out_dim, 3)
    xt, yt = _target_batch()
    before = {
        "backbone": copy.deepcopy(backbone),
        "source": copy.deepcopy(head),
        "target": copy.deepcopy(target_head),
    }
    # expected α from the slow path, on copies at θ_m
    tl = F.cross_entropy(before["target"](before["backbone"](xt)), yt)
    g = torch.autograd.grad(tl, list(before["backbone"].parameters()))
    tangent = dict(zip(dict(before["backbone"].named_parameters()), g, strict=True))
    along = directional_by_loop(before["backbone"], before["source"], x, y, tangent).detach()
    lr = 0.05
    n = 1 if rule.norm == "sample" else len(x)  # the authors' code moves α per sample
    expected = (alpha + rule.alpha_lr * lr * along / n).clamp(rule.low, rule.high)
    params = [*backbone.parameters(), *head.parameters()]
    if target_head is not head:
        params += list(target_head.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    result = soseleto_step(backbone, head, target_head, opt, (x, y), (xt, yt), alpha, rule)
    after = {"backbone": backbone, "source": head, "target": target_head}
    return before, after, result.alpha, expected, lr


@pytest.mark.parametrize("norm", ["batch", "sample"])
def test_alpha_update_is_eq5_with_the_target_gradient_at_the_old_theta(norm: str) -> None:
    alpha = torch.tensor([1.0, 0.5, 0.2, 1.0, 0.7, 0.9])
    rule = AlphaRule(alpha_lr=3.0, low=-100.0, high=100.0, norm=norm)
    _, _, new, expected, _ = _sgd_step("transfer", alpha, rule)
    torch.testing.assert_close(new, expected)
    assert not torch.equal(new, alpha)


def test_sample_norm_moves_alpha_l_times_further_with_the_same_theta_step() -> None:
    alpha = torch.tensor([1.0, 0.5, 0.2, 1.0, 0.7, 0.9])
    batch = _sgd_step("transfer", alpha, AlphaRule(alpha_lr=3.0, low=-100.0, high=100.0))
    sample = _sgd_step(
        "transfer", alpha, AlphaRule(alpha_lr=3.0, low=-100.0, high=100.0, norm="sample")
    )
    torch.testing.assert_close(sample[2] - alpha, (batch[2] - alpha) * len(alpha))
    for a, b in zip(batch[1]["backbone"].parameters(), sample[1]["backbone"].parameters()):
        torch.testing.assert_close(a, b)  # θ still takes the α-weighted batch mean


@pytest.mark.parametrize("setting", ["noisy", "transfer"])
def test_theta_follows_only_the_weighted_source_and_the_classifiers_as_alg1(setting: str) -> None:
    alpha = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.25, 1.1])
    rule = AlphaRule(alpha_lr=1.0, low=0.0, high=1.1)
    before, after, _, _, lr = _sgd_step(setting, alpha, rule)
    _, _, x, y = _tiny_model()
    xt, yt = _target_batch()
    # expected gradients at θ_m: α_m-weighted mean source loss (θ, φˢ), target loss (φᵗ)
    src = F.cross_entropy(before["source"](before["backbone"](x)), y, reduction="none")
    weighted = (alpha * src).sum() / len(x)
    g_theta = torch.autograd.grad(
        weighted, list(before["backbone"].parameters()), retain_graph=True
    )
    g_src = torch.autograd.grad(weighted, list(before["source"].parameters()))
    tl = F.cross_entropy(before["target"](before["backbone"](xt)), yt)
    g_tgt = torch.autograd.grad(tl, list(before["target"].parameters()))
    for p0, p1, g in zip(
        before["backbone"].parameters(), after["backbone"].parameters(), g_theta, strict=True
    ):
        torch.testing.assert_close(p1, p0 - lr * g, rtol=1e-4, atol=1e-6)
    if setting == "noisy":
        # one classifier: it takes the source's Rα and the target's step together
        assert after["source"] is after["target"]
        for p0, p1, gs, gt in zip(
            before["source"].parameters(), after["source"].parameters(), g_src, g_tgt, strict=True
        ):
            torch.testing.assert_close(p1, p0 - lr * (gs + gt), rtol=1e-4, atol=1e-6)
    else:
        assert after["source"] is not after["target"]
        for p0, p1, gs in zip(
            before["source"].parameters(), after["source"].parameters(), g_src, strict=True
        ):
            torch.testing.assert_close(p1, p0 - lr * gs, rtol=1e-4, atol=1e-6)
        for p0, p1, gt in zip(
            before["target"].parameters(), after["target"].parameters(), g_tgt, strict=True
        ):
            torch.testing.assert_close(p1, p0 - lr * gt, rtol=1e-4, atol=1e-6)


def test_agreeing_sample_rises_and_disagreeing_sample_falls() -> None:
    """Two classes: a source sample equal to a target sample has the target's gradient
    (α rises); the same input with the other label has the opposite gradient (α falls)."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    head = nn.Linear(4, 2)
    x = torch.tensor([[0.5, -1.0, 2.0]])
    xs, ys = x.repeat(2, 1), torch.tensor([1, 0])
    xt, yt = x, torch.tensor([1])
    opt = torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=0.1)
    alpha = torch.tensor([0.5, 0.5])
    rule = AlphaRule(alpha_lr=10.0, low=0.0, high=1.0)
    new = soseleto_step(backbone, head, head, opt, (xs, ys), (xt, yt), alpha, rule).alpha
    assert new[0] > 0.5 > new[1]


def test_alpha_stays_in_the_clip_range_and_reaches_both_ends() -> None:
    data = load_dataset("noisy_plane", {"n_source": 120, "n_noisy": 40, "n_target": 20})
    config = get_method("soseleto").make_config(
        {
            **TOY,
            "epochs": 3,
            "alpha_lr": 5000.0,
            "alpha_init": 0.5,
            "alpha_min": 0.2,
            "alpha_max": 0.9,
        }
    )
    art = ArtifactCollector()
    get_method("soseleto").train(config, data, RunContext(seed=0, artifact=art))
    alpha = art.tables["alpha"]["alpha"]
    assert len(alpha) == 120
    assert alpha.min() >= 0.2 - 1e-6 and alpha.max() <= 0.9 + 1e-6
    assert np.isclose(alpha, 0.2, atol=1e-6).any() and np.isclose(alpha, 0.9, atol=1e-6).any()


def test_kernel_shares_the_classifier_only_in_the_noisy_setting() -> None:
    data = load_dataset("noisy_plane", {"n_source": 40, "n_noisy": 5, "n_target": 10})
    for setting, shared in (("noisy", True), ("transfer", False)):
        config = get_method("soseleto").make_config({**TOY, "setting": setting})
        run = _Soseleto(config, data, RunContext())
        assert (run.source_head is run.target_head) is shared


def test_noisy_samples_end_below_clean_ones_with_diagnostics_and_artifacts(tmp_path) -> None:
    data = load_dataset("noisy_digits", {"noise": 0.4})
    values = {
        "task": "digit",
        "clean_label": "true_digit",
        "epochs": 3,
        "alpha_lr": 100.0,
        "backbone": "mlp",
    }
    config = get_method("soseleto").make_config(values)
    history, art = MetricsCollector(), ArtifactCollector()
    ctx = RunContext(seed=0, report=history, artifact=art, files_dir=tmp_path)
    get_method("soseleto").train(config, data, ctx)
    last = history.history[-1]
    assert last["train/alpha_noisy"] < last["train/alpha_clean"]
    table = art.tables["alpha"]
    source = data.domain("source")
    np.testing.assert_array_equal(table["label"], source.column("digit").astype(np.int64))
    np.testing.assert_array_equal(
        table["noisy"], source.column("digit") != source.column("true_digit")
    )
    assert math.isclose(
        last["train/alpha_accounted"], accounted(table["alpha"], table["noisy"], 0.1), rel_tol=1e-6
    )
    curve = art.tables["alpha_curve"]
    # keeping everything leaves the source's own noise; keeping the top α keeps less
    assert math.isclose(curve["effective_noise"][-1], float(table["noisy"].mean()))
    assert curve["effective_noise"][3] < curve["effective_noise"][-1]
    saved = torch.load(tmp_path / "soseleto.pt")
    np.testing.assert_allclose(saved["alpha"].numpy(), table["alpha"], rtol=1e-6)


def test_noise_curve_and_accounted_against_a_hand_count() -> None:
    alpha = np.array([0.9, 0.05, 0.5, 0.0, 1.1, 0.3, 0.08, 0.7, 0.2, 1.0])
    noisy = np.array([False, True, False, True, False, True, False, False, True, False])
    # clean ≥ 0.1: 0.9, 0.5, 1.1, 0.7, 1.0 kept, 0.08 dropped; noisy < 0.1: 0.05, 0.0
    assert accounted(alpha, noisy, 0.1) == pytest.approx(7 / 10)
    means = group_means(alpha, noisy)
    assert means["alpha_noisy"] == pytest.approx((0.05 + 0.0 + 0.3 + 0.2) / 4)
    curve = noise_curve(alpha, noisy)
    # top half by α: 1.1, 1.0, 0.9, 0.7, 0.5 → no noisy sample; top 70%: + 0.3 (noisy), 0.2 (noisy)
    half = list(curve["kept_fraction"]).index(0.5)
    assert curve["kept"][half] == 5 and curve["effective_noise"][half] == 0.0
    seventy = list(curve["kept_fraction"]).index(0.7)
    assert curve["effective_noise"][seventy] == pytest.approx(2 / 7)
    assert curve["min_alpha"][seventy] == pytest.approx(0.2)
    assert curve["effective_noise"][-1] == pytest.approx(0.4)
    assert group_means(alpha, np.zeros(10, dtype=bool)) == {"alpha_clean": alpha.mean()}


@pytest.mark.parametrize("mode", ["target_only", "fine_tune", "source_only"])
def test_baselines_train_and_report_without_alpha(mode: str) -> None:
    data = load_dataset("noisy_plane", {"n_source": 64, "n_noisy": 10, "n_target": 20})
    config = get_method("soseleto").make_config(
        {**TOY, "epochs": 2, "mode": mode, "pretrain_epochs": 1}
    )
    history, art = MetricsCollector(), ArtifactCollector()
    final = get_method("soseleto").train(config, data, RunContext(report=history, artifact=art))
    assert [h["epoch"] for h in history.history] == [1.0, 2.0]
    assert 0.0 <= final["test/acc/label"] <= 1.0
    assert "alpha" not in art.tables  # no weights without SOSELETO


def test_two_stage_relabels_the_unlabelled_target_and_weights_it() -> None:
    data = load_dataset("digit_transfer", {"n_target": 25})
    config = get_method("soseleto").make_config(
        {
            "task": "digit",
            "setting": "transfer",
            "mode": "two_stage",
            "clean_label": "true_digit",
            "epochs": 1,
            "pretrain_epochs": 1,
            "backbone": "mlp",
            "batch_size": 64,
        }
    )
    history, art = MetricsCollector(), ArtifactCollector()
    get_method("soseleto").train(config, data, RunContext(report=history, artifact=art))
    target = data.domain("target")
    unlabelled = target.indices("train")[target.column("digit")[target.indices("train")] < 0]
    table = art.tables["alpha"]
    assert set(table["domain"]) == {"target"}
    np.testing.assert_array_equal(np.sort(table["row"]), np.sort(unlabelled))
    pseudo_acc = history.history[-1]["train/pseudo_acc"]
    assert pseudo_acc == pytest.approx(float(np.mean(table["label"] == table["true_label"])))


def test_transfer_with_a_clean_source_reports_no_nan() -> None:
    """A transfer source given with its true labels has no noisy group at all."""
    data = load_dataset("digit_transfer", {"n_target": 20})
    config = get_method("soseleto").make_config(
        {
            "task": "digit",
            "setting": "transfer",
            "clean_label": "true_digit",
            "epochs": 1,
            "backbone": "mlp",
            "alpha_lr": 100.0,
        }
    )
    history = MetricsCollector()
    get_method("soseleto").train(config, data, RunContext(report=history))
    last = history.history[-1]
    assert "train/alpha_noisy" not in last and last["train/alpha_accounted"] <= 1.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "source_only", "setting": "transfer"}, "needs setting=noisy"),
        ({"mode": "two_stage"}, "use setting=transfer"),
        ({"alpha_init": 1.5}, "alpha_init=1.5 must lie in the clip range"),
        ({"alpha_min": 1.0, "alpha_max": 0.5}, "alpha_min=1.0 must be below alpha_max=0.5"),
        ({"source_domain": "target"}, "is the target domain"),
        ({"mode": "fine_tune", "pretrain_epochs": 0}, "needs pretrain_epochs >= 1"),
    ],
)
def test_bad_settings_fail_in_one_sentence(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_method("soseleto").make_config({"task": "digit", **values})


def test_two_stage_needs_unlabelled_target_rows() -> None:
    data = load_dataset("noisy_plane")
    config = get_method("soseleto").make_config({**TOY, "setting": "transfer", "mode": "two_stage"})
    with pytest.raises(DataError, match="fewer than 2 training rows with 'label' = -1"):
        config.check_data(data)


def test_defaults_are_the_papers() -> None:
    c = SoseletoConfig()
    assert (c.optimizer, c.lr, c.weight_decay, c.lr_milestones) == ("sgd", 1e-2, 0.0, ())
    assert (c.alpha_init, c.alpha_min, c.alpha_max) == (1.0, 0.0, 1.1)
    # how α moves is the authors' code's: the paper's literal values do not select
    alpha_rule = (c.alpha_lr, c.alpha_norm, c.head_in_alpha, c.alpha_first)
    assert alpha_rule == (20.0, "sample", True, True)
    assert (c.batch_size, c.target_batch_size, c.alpha_threshold) == (32, 10, 0.1)


# ---------------------------------------------------------------- the built-in data


def test_confusion_matrix_is_stochastic_with_the_noise_off_the_diagonal() -> None:
    rng = np.random.default_rng(0)
    m = confusion_matrix(10, 0.4, rng)
    np.testing.assert_allclose(m.sum(1), 1.0)
    np.testing.assert_allclose(np.diag(m), 0.6)
    assert (m >= 0).all() and m[~np.eye(10, dtype=bool)].std() > 0  # random, not uniform
    s = symmetric_matrix(4, 0.3)
    np.testing.assert_allclose(s[~np.eye(4, dtype=bool)], 0.1)
    labels = np.repeat(np.arange(10), 2000)
    flipped = corrupt(labels, m, rng)
    assert abs(float((flipped != labels).mean()) - 0.4) < 0.02
    # the off-diagonal frequencies follow the matrix row
    row3 = np.bincount(flipped[labels == 3], minlength=10) / 2000
    np.testing.assert_allclose(row3, m[3], atol=0.03)


def test_noisy_digits_keeps_true_labels_and_a_clean_target() -> None:
    data = load_dataset("noisy_digits", {"noise": 0.5, "n_clean": 50})
    source, target = data.domain("source"), data.domain("target")
    wrong = float((source.column("digit") != source.column("true_digit")).mean())
    assert 0.4 < wrong < 0.6
    np.testing.assert_array_equal(target.column("digit"), target.column("true_digit"))
    assert len(target.indices("train")) == 50
    assert set(source.split) == {"train"}


def test_noisy_plane_is_the_papers_problem() -> None:
    data = load_dataset("noisy_plane")
    source = data.domain("source")
    assert len(source) == 500
    truth = (source.inputs[:, 0] > 0).astype(np.float32)
    np.testing.assert_array_equal(source.column("true_label"), truth)
    assert int((source.column("label") != truth).sum()) == 100
    assert len(data.domain("target").indices("train")) == 50


@pytest.mark.parametrize("n_target", [20, 25])
def test_digit_transfer_splits_the_label_sets(n_target: int) -> None:
    data = load_dataset("digit_transfer", {"n_target": n_target})
    source, target = data.domain("source"), data.domain("target")
    assert set(np.unique(source.column("digit"))) == {0, 1, 2, 3, 4}
    train = target.indices("train")
    given = target.column("digit")[train]
    labelled = given[given >= 0]
    assert len(labelled) == n_target
    assert np.bincount(labelled.astype(int), minlength=10)[5:].tolist() == [n_target // 5] * 5
    assert set(np.unique(target.column("true_digit"))) == {5, 6, 7, 8, 9}
    assert (given < 0).sum() > 100  # unlabelled rows for two-stage SOSELETO
    assert source.input_shape == target.input_shape == (3, 32, 32)


def test_digit_transfer_rejects_an_uneven_target() -> None:
    with pytest.raises(DataError, match="n_target=23 must be a multiple of 5"):
        load_dataset("digit_transfer", {"n_target": 23})


def test_frozen_is_soseleto_with_the_weights_held_at_their_start() -> None:
    """The control of every SOSELETO table: the same training, α never moving."""
    data = load_dataset("noisy_plane", {"n_source": 64, "n_noisy": 10, "n_target": 20})
    spec = get_method("soseleto")

    def run(**values: object) -> tuple[dict[str, float], np.ndarray]:
        art = ArtifactCollector()
        config = spec.make_config({**TOY, "epochs": 2, **values})
        final = spec.train(config, data, RunContext(seed=1, artifact=art))
        return final, art.tables["alpha"]["alpha"]

    frozen, alpha = run(mode="frozen", alpha_lr=5.0)
    assert np.all(alpha == 1.0)  # alpha_init, untouched
    assert frozen == run(mode="soseleto", alpha_lr=0.0)[0]
    moving, moved = run(mode="soseleto", alpha_lr=5.0)
    assert not np.all(moved == 1.0) and moving != frozen


def test_a_target_without_a_val_split_trains_when_selection_does_not_need_one() -> None:
    data = load_dataset("noisy_plane", {"n_source": 64, "n_noisy": 10, "n_target": 20})
    target = data.domain("target")
    split = np.where(target.split == "val", "test", target.split)
    domains = {**data.domains, "target": replace(target, split=split)}
    no_val = replace(data, domains=domains)
    spec = get_method("soseleto")
    last = spec.make_config({**TOY, "epochs": 1, "select": "last"})
    last.check_data(no_val)
    final = spec.train(last, no_val, RunContext(seed=0))
    assert 0.0 <= final["test/acc/label"] <= 1.0 and "val/acc/label" not in final
    best = spec.make_config({**TOY, "epochs": 1, "select": "best_val"})
    with pytest.raises(DataError, match="domain 'target' has no 'val' samples"):
        best.check_data(no_val)
