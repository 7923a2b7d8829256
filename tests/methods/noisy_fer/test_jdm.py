"""Noisy multi-task joint distribution matching and its baselines: the hinge terms,
CCC, the G/D schedule, the ablation switches, Co-teaching's exchange, SCE, the
majority vote and the built-in noisy label sets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods import ArtifactCollector, ConfigError, MetricsCollector, RunContext, get_method
from methods.core import kept_buffers
from methods.data import load_dataset
from methods.noisy_fer import jdm as jdm_module
from methods.noisy_fer.baselines import (
    CoteachingConfig,
    coteaching_step,
    forget_schedule,
    majority_vote,
    symmetric_cross_entropy,
)
from methods.noisy_fer.jdm import (
    discriminator_loss,
    g_hinge,
    generator_adversarial,
    h_hat,
    h_hinge,
)
from methods.noisy_fer.label_sets import ccc
from methods.noisy_fer.nets import Discriminator

SETS = {
    "tasks": ["digit_n1", "digit_n2", "digit_n3", "ink_n"],
    "continuous": ["ink_n"],
    "clean": ["digit", "digit", "digit", "ink"],
    "backbone": "small_cnn",
    "batch_size": 128,
    "lr": 1e-3,
}


@pytest.fixture(scope="module")
def noisy_sets():
    return load_dataset("noisy_sets")


def test_hinge_terms_have_eq10s_values() -> None:
    z = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0])
    torch.testing.assert_close(g_hinge(z), torch.tensor([-3.0, -2.0, -1.0, -0.5, 0.0, 0.0]))
    torch.testing.assert_close(h_hinge(z), torch.tensor([0.0, 0.0, -1.0, -1.5, -2.0, -3.0]))
    torch.testing.assert_close(h_hat(z), -z)


def test_d_and_g_losses_push_the_scores_apart_with_the_encoder_as_real() -> None:
    enc = {"joint": torch.tensor([2.0, 0.0], requires_grad=True)}
    dec = {"joint": torch.tensor([-2.0, 0.0], requires_grad=True)}
    d = discriminator_loss(enc, dec)
    assert float(d.detach()) == pytest.approx(-((0.0 - 1.0) / 2 + (0.0 - 1.0) / 2))  # = 1
    g_enc, g_dec = torch.autograd.grad(d, [enc["joint"], dec["joint"]])
    # D's descent raises encoder scores below 1 and lowers decoder scores above −1 only
    assert g_enc.tolist() == [0.0, -0.5] and g_dec.tolist() == [0.0, 0.5]
    g = generator_adversarial(enc, dec)
    assert float(g.detach()) == pytest.approx(1.0 - (-1.0))  # mean S_enc − mean S_dec
    a_enc, a_dec = torch.autograd.grad(g, [enc["joint"], dec["joint"]])
    assert (a_enc > 0).all() and (a_dec < 0).all()  # G lowers S_enc, raises S_dec
    # every score counts: two scores double the terms
    both = {"joint": enc["joint"], "x": enc["joint"]}, {"joint": dec["joint"], "x": dec["joint"]}
    assert float(discriminator_loss(*both).detach()) == pytest.approx(2 * float(d.detach()))


def test_ccc_matches_a_direct_computation_and_handles_a_batch_of_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = 0.7 * x + rng.normal(scale=0.5, size=50) + 0.3
    direct = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    got = float(ccc(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)))
    assert got == pytest.approx(direct, rel=1e-5)
    t = torch.tensor(x - x.mean(), dtype=torch.float32)
    assert float(ccc(t, t)) == pytest.approx(1.0) and float(ccc(t, -t)) == pytest.approx(-1.0)
    one = torch.tensor([0.4], requires_grad=True)
    assert float(ccc(one, torch.tensor([0.4])).detach()) == 1.0  # agree perfectly
    value = ccc(one, torch.tensor([-0.2]))
    assert float(value.detach()) == 0.0  # no variance to correlate: 0, not NaN
    value.backward()
    assert torch.isfinite(one.grad).all()


def test_g_step_then_two_d_steps_after_the_warmup(noisy_sets, monkeypatch) -> None:
    calls = {"d_forward": 0}
    original = Discriminator.forward

    def counting(self, *args, **kwargs):
        calls["d_forward"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Discriminator, "forward", counting)
    history = MetricsCollector()
    config = get_method("jdm").make_config({**SETS, "epochs": 2, "warmup_epochs": 1})
    get_method("jdm").train(config, noisy_sets, RunContext(report=history))
    first, second = history.history
    iterations = first["train/g_steps"]
    assert iterations == len(range(0, 1078, 128)) == second["train/g_steps"]
    assert first["train/d_steps"] == 0 and first["train/loss/g_adv"] == 0.0
    assert second["train/d_steps"] == 2 * iterations
    # only the adversarial epoch touches D: 2 scorings in the G step, 2 per D step
    assert calls["d_forward"] == iterations * (2 + 2 * 2)


def test_ablation_switches_remove_their_scores_and_the_decoder(noisy_sets, monkeypatch) -> None:
    full = Discriminator((1, 8, 8), 4, [10, 1])
    no_joint = Discriminator((1, 8, 8), 4, [10, 1], joint=False)
    no_marginal = Discriminator((1, 8, 8), 4, [10, 1], marginal=False)
    args = (torch.randn(3, 1, 8, 8), torch.randn(3, 4), [torch.randn(3, 10), torch.randn(3, 1)])
    assert set(full(*args)) == {"joint", "x", "y0", "set0", "set1"}
    assert set(no_joint(*args)) == {"x", "y0", "set0", "set1"} and no_joint.joint is None
    assert set(no_marginal(*args)) == {"joint"} and no_marginal.marginal is None
    with pytest.raises(ConfigError, match="D needs at least one score"):
        get_method("jdm").make_config({**SETS, "joint_score": False, "marginal_scores": False})
    built = []
    original = jdm_module.Decoder.__init__

    def record(self, *a, **k):
        built.append(1)
        original(self, *a, **k)

    monkeypatch.setattr(jdm_module.Decoder, "__init__", record)
    art = ArtifactCollector()
    config = get_method("jdm").make_config({**SETS, "epochs": 1, "decoder": False})
    final = get_method("jdm").train(config, noisy_sets, RunContext(artifact=art))
    assert not built and "samples" not in art.tables
    assert np.isfinite(final["train/loss/g_adv"])


def test_decoder_samples_cover_every_class(noisy_sets) -> None:
    art = ArtifactCollector()
    config = get_method("jdm").make_config({**SETS, "epochs": 1})
    get_method("jdm").train(config, noisy_sets, RunContext(artifact=art))
    samples = art.tables["samples"]
    assert sorted(set(samples["label"].tolist())) == list(range(10))
    assert len(samples["label"]) == 10 * jdm_module.SAMPLES_PER_CLASS
    pixels = np.stack(samples["pixels"])
    assert pixels.shape == (80, 64) and pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_coteaching_updates_each_net_on_its_peers_small_loss_rows() -> None:
    torch.manual_seed(0)
    nets = (nn.Linear(4, 3), nn.Linear(4, 3))
    before = [copy.deepcopy(n) for n in nets]
    opts = tuple(torch.optim.SGD(n.parameters(), lr=0.1) for n in nets)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    chosen1, chosen2, _ = coteaching_step(nets, opts, x, y, forget=0.4)  # type: ignore[arg-type]
    for b, chosen in zip(before, (chosen1, chosen2), strict=True):
        losses = F.cross_entropy(b(x), y, reduction="none")
        assert sorted(chosen.tolist()) == sorted(torch.argsort(losses)[:6].tolist())
    assert set(chosen1.tolist()) != set(chosen2.tolist())  # otherwise the test shows nothing
    for k in (0, 1):
        peer = (chosen1, chosen2)[1 - k]
        loss = F.cross_entropy(before[k](x[peer]), y[peer])
        grads = torch.autograd.grad(loss, list(before[k].parameters()))
        for p0, p1, g in zip(before[k].parameters(), nets[k].parameters(), grads, strict=True):
            torch.testing.assert_close(p1, p0 - 0.1 * g)


def test_coteaching_forget_rate_ramps_to_tau() -> None:
    c = CoteachingConfig(tasks=("y",), forget_rate=0.4, num_gradual=10)
    assert forget_schedule(1, c) == 0.0
    assert forget_schedule(6, c) == pytest.approx(0.2)
    assert forget_schedule(11, c) == pytest.approx(0.4) == forget_schedule(30, c)


def test_sce_against_a_direct_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 2])
    p = F.softmax(logits, 1)
    ce = -torch.log(p[[0, 1], target]).mean()
    # −Σ_k p_k log q_k with log q = 0 at the label and −4 elsewhere: 4·(1 − p_label)
    rce = float(np.mean([4.0 * (1 - p[i, target[i]].item()) for i in range(2)]))
    expected = 0.1 * ce + 1.0 * rce
    got = symmetric_cross_entropy(logits, target, 0.1, 1.0, -4.0)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_majority_vote_breaks_ties_by_the_earliest_vote() -> None:
    votes = np.array([[1, 1, 2], [3, 4, 4], [5, 6, 7], [-1, 2, -1], [-1, -1, -1]])
    assert majority_vote(votes).tolist() == [1, 4, 5, 2, -1]


def test_sce_and_coteaching_take_class_sets_only() -> None:
    get_method("coteaching").make_config({"tasks": ["a", "b"]})  # every set, combined
    with pytest.raises(ConfigError, match="takes class label sets only"):
        get_method("sce").make_config({"tasks": ["a", "v"], "continuous": ["v"]})
    with pytest.raises(ConfigError, match="clean has 1 names for 2 tasks"):
        get_method("noisy_all").make_config({"tasks": ["a", "b"], "clean": ["c"]})


@pytest.mark.parametrize("name", ["noisy_clean", "noisy_majority", "noisy_all", "jdm"])
def test_scores_against_clean_test_and_noisy_val_labels(name: str, noisy_sets) -> None:
    history = MetricsCollector()
    config = get_method(name).make_config({**SETS, "epochs": 2})
    final = get_method(name).train(config, noisy_sets, RunContext(report=history))
    for key in ("test/acc/digit", "test/ccc/ink", "test/mse/ink", "val/acc/digit"):
        assert key in final and np.isfinite(final[key])
    best = final["train/best_noisy_val_epoch"]
    assert best in (1.0, 2.0)
    chosen = history.history[int(best) - 1]
    assert final["test/best_noisy_val_acc/digit"] == chosen["test/acc/digit"]
    assert chosen["val/acc/digit"] == max(h["val/acc/digit"] for h in history.history)
    assert history.history[-1]["test/acc/digit"] == final["test/acc/digit"]  # select=last


def test_noisy_sets_flip_exactly_and_keep_a_clean_ink() -> None:
    domain = load_dataset("noisy_sets", {"ink_noise": 0.3}).domain()
    digit = domain.column("digit")
    for name, rate in (("digit_n1", 0.2), ("digit_n2", 0.3), ("digit_n3", 0.4)):
        assert int((domain.column(name) != digit).sum()) == round(rate * len(digit))
    ink = domain.column("ink")
    assert ink.min() == pytest.approx(-1.0) and ink.max() == pytest.approx(1.0)
    assert float(np.std(domain.column("ink_n") - ink)) == pytest.approx(0.3, abs=0.03)


def test_jdm_runs_on_feature_vectors_with_an_mlp_decoder() -> None:
    """A user's own noisy data need not be images: G_X and D's input stream become MLPs."""
    from methods.data import Dataset, Domain

    rng = np.random.default_rng(0)
    n = 120
    clean = rng.integers(0, 3, size=n)
    x = (np.eye(3)[clean] * 2 + rng.normal(size=(n, 3))).astype(np.float32)
    noisy = np.where(rng.random(n) < 0.3, (clean + 1) % 3, clean)
    value = x[:, 0] / 3
    labels = np.stack([clean, noisy, value, value + rng.normal(0, 0.1, n)], 1).astype(np.float32)
    split = np.array(["train", "val", "test"])[np.arange(n) % 3]
    data = Dataset(
        "vec", {"v": Domain("v", x, labels, ("y", "y_n", "v", "v_n"), split)}, "vec-test"
    )
    config = get_method("jdm").make_config(
        {
            "tasks": ["y_n", "v_n"],
            "continuous": ["v_n"],
            "clean": ["y", "v"],
            "backbone": "mlp",
            "epochs": 2,
            "batch_size": 32,
            "lr": 1e-3,
        }
    )
    art = ArtifactCollector()
    final = get_method("jdm").train(config, data, RunContext(artifact=art))
    assert 0.0 <= final["test/acc/y"] <= 1.0 and np.isfinite(final["test/ccc/v"])
    assert "samples" not in art.tables  # no images to show


def test_noisy_sets_on_shapes_has_four_classes_and_the_same_columns() -> None:
    data = load_dataset("noisy_sets", {"base": "shapes"})
    domain = data.domain("shapes")
    assert domain.input_shape == (3, 16, 16)
    assert set(np.unique(domain.column("digit"))) == {0, 1, 2, 3}
    wrong = domain.column("digit_n3") != domain.column("digit")
    assert int(wrong.sum()) == round(0.4 * len(domain))


def test_noisy_clean_refuses_a_clean_column_without_training_labels(noisy_sets) -> None:
    from methods.core.errors import DataError

    config = get_method("noisy_clean").make_config({**SETS, "clean": ["digit_n1"] * 3 + ["ink"]})
    config.check_data(noisy_sets)  # labelled: fine
    domain = noisy_sets.domain()
    hidden = domain.labels.copy()
    hidden[domain.indices("train"), domain.column_index("digit")] = -1
    from methods.data import Dataset, Domain

    blank = Dataset(
        "blank",
        {"digits": Domain("digits", domain.inputs, hidden, domain.label_names, domain.split)},
        "blank",
    )
    config = get_method("noisy_clean").make_config(SETS)
    with pytest.raises(DataError, match="'digit' has no labelled training row"):
        config.check_data(blank)


def test_coteaching_ranks_samples_by_the_loss_summed_over_the_sets() -> None:
    """§5.1: the baselines combine the losses of all label sets; a missing label adds 0."""
    torch.manual_seed(0)

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [self.a(x), self.b(x)]

    nets = (TwoHeads(), TwoHeads())
    before = [copy.deepcopy(n) for n in nets]
    opts = tuple(torch.optim.SGD(n.parameters(), lr=0.1) for n in nets)
    x = torch.randn(10, 4)
    y = torch.randint(0, 3, (10, 2))
    y[2, 1] = -1  # a missing label in the second set
    chosen1, _, _ = coteaching_step(nets, opts, x, y, forget=0.4)  # type: ignore[arg-type]
    first = before[0](x)
    summed = F.cross_entropy(first[0], y[:, 0], reduction="none") + torch.where(
        y[:, 1] >= 0,
        F.cross_entropy(first[1], y[:, 1].clamp(min=0), reduction="none"),
        torch.zeros(10),
    )
    assert sorted(chosen1.tolist()) == sorted(torch.argsort(summed)[:6].tolist())


def test_d_steps_score_the_generators_after_their_step(noisy_sets, monkeypatch) -> None:
    """Alg. 1 line 6: D is trained on what G_Y gives after G's update, not on the
    outputs G's own step was computed from."""
    calls: list[list[torch.Tensor]] = []
    forward = Discriminator.forward

    def record(self, x, y0, labels):  # type: ignore[no-untyped-def]
        calls.append([t.detach().clone() for t in labels])
        return forward(self, x, y0, labels)

    monkeypatch.setattr(Discriminator, "forward", record)
    config = get_method("jdm").make_config({**SETS, "epochs": 1, "d_steps": 1})
    get_method("jdm").train(config, noisy_sets, RunContext(seed=0))
    # per iteration: G's step scores (encoder, decoder), then D's step does the same
    g_encoder, d_encoder = calls[0], calls[2]
    assert all(a.shape == b.shape for a, b in zip(g_encoder, d_encoder, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(g_encoder, d_encoder, strict=True))
    torch.testing.assert_close(calls[1], calls[3])  # the decoder side's given labels


def test_kept_buffers_leave_batch_norm_statistics_alone() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    net.train()
    before = [b.clone() for b in net.buffers()]
    with torch.no_grad(), kept_buffers(net):
        net(torch.randn(8, 4) * 5 + 3)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers(), strict=True))
    net(torch.randn(8, 4) * 5 + 3)
    assert not torch.equal(before[0], next(net.buffers()))
