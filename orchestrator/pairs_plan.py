"""The trial plan of the AAL pair search (paper §3.3).

Stage 1: M single-task runs (`stl`) and M(M−1)/2 pair runs (`mtl` on two
attributes), each repeated for K seeds. Stage 3: for each attribute with a
negative partner, one `aal` run per λ and seed. Cell ids depend only on what a
cell trains, so the plan of a rerun finds the cells already done.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from methods import get_method
from methods.config import config_to_dict
from methods.data import Dataset
from methods.training import TrainConfig, task_specs

from .cells import Cell
from .errors import ConfigError, UserInputError
from .pair_analysis import Partner
from .spaces import bundled_space_path, load_space

SEARCH_OWNED = ("task", "tasks", "main", "adversaries", "lam")


@dataclass(frozen=True)
class PairsSettings:
    """Everything that decides which cells a pair search trains."""

    attributes: tuple[str, ...]
    train: dict[str, Any]  # TrainConfig fields, shared by stl, mtl and aal
    adversarial: dict[str, Any]  # the aal-only fields (adversary_loss, critic_clip)
    lambdas: tuple[float, ...]
    seeds: int = 1
    seed: int = 0
    adversaries: str = "worst"  # "worst": the paper's pairwise AAL; "all": every negative partner
    alpha: float = 0.05
    require_significant: bool = False
    domain: str = field(default="")

    def identity(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "search": "aal-pairs",
            "dataset": dataset.fingerprint,
            "train": self.train,
            "adversarial": self.adversarial,
            "attributes": sorted(self.attributes),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "attributes": list(self.attributes),
            "lambdas": list(self.lambdas),
            "seeds": self.seeds,
            "seed": self.seed,
            "adversaries": self.adversaries,
            "alpha": self.alpha,
            "require_significant": self.require_significant,
        }


def default_lambdas() -> tuple[float, ...]:
    """λ values of stage 3: the `lam` choices of search_spaces/aal.yaml (the paper's
    0.01, 0.1, 0.3, 0.5, 1.0 in the bundled file)."""
    space = load_space(bundled_space_path("aal"), "aal")
    return tuple(float(v) for v in space.params["lam"].values)


def resolve_settings(
    dataset: Dataset,
    *,
    attributes: Sequence[str] | None,
    overrides: Mapping[str, Any],
    lambdas: Sequence[float] | None = None,
    seeds: int = 1,
    seed: int = 0,
    adversaries: str = "worst",
    alpha: float = 0.05,
    require_significant: bool = False,
) -> PairsSettings:
    """Validate a pair search completely, before anything is trained or written."""
    owned = sorted(set(overrides) & set(SEARCH_OWNED))
    if owned:
        raise ConfigError(
            f"'{owned[0]}' is set by the pair search itself; use --attributes and --lambdas"
        )
    aal = get_method("aal")
    allowed = [f.name for f in fields(aal.config_cls) if f.name not in SEARCH_OWNED]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown setting '{unknown[0]}' for the pair search; valid: {', '.join(allowed)}"
        )
    domain = dataset.domain(str(overrides.get("domain", "")))
    if attributes is None:
        attributes = domain.binary_attributes()
    attributes = tuple(attributes)
    if len(attributes) < 2:
        raise UserInputError(
            f"a pair search needs at least 2 attributes, got {len(attributes)}"
            f" ({', '.join(attributes) or 'none'}); available: {', '.join(domain.label_names)}"
        )
    if len(set(attributes)) != len(attributes):
        dup = next(a for a in attributes if attributes.count(a) > 1)
        raise UserInputError(f"--attributes names '{dup}' twice")
    task_specs(domain, attributes)  # unknown name, continuous labels, no train/val labels

    lambdas = tuple(default_lambdas() if lambdas is None else lambdas)
    if not lambdas:
        raise UserInputError("--lambdas is empty; give at least one λ ≥ 0")
    for lam in lambdas:
        if not math.isfinite(lam) or lam < 0:
            raise UserInputError(f"λ={lam:g} is not allowed; λ values must be finite and ≥ 0")
    if len(set(lambdas)) != len(lambdas):
        raise UserInputError("--lambdas repeats a value")
    if seeds < 1:
        raise UserInputError(f"--seeds {seeds} is not allowed; use 1 or more")
    if adversaries not in ("worst", "all"):
        raise UserInputError(f"--adversaries {adversaries}: choose worst or all")
    if not 0 < alpha < 1:
        raise UserInputError(f"--alpha {alpha} must be in (0, 1)")
    if require_significant and seeds < 2:
        raise UserInputError("--require-significant needs --seeds 2 or more")

    # One full config per kernel, validated against the data: bad backbones,
    # bad values and missing splits stop here, not inside a trial.
    a, b = attributes[0], attributes[1]
    aal_config = aal.make_config({**overrides, "main": [a], "adversaries": [b]})
    aal_config.check_data(dataset)
    get_method("mtl").make_config({**_train_only(overrides), "tasks": [a, b]}).check_data(dataset)
    get_method("stl").make_config({**_train_only(overrides), "task": a}).check_data(dataset)
    resolved = config_to_dict(aal_config)
    train_keys = [f.name for f in fields(TrainConfig)]
    return PairsSettings(
        attributes=attributes,
        train={k: resolved[k] for k in train_keys},
        adversarial={
            k: v for k, v in resolved.items() if k not in train_keys and k not in SEARCH_OWNED
        },
        lambdas=lambdas,
        seeds=seeds,
        seed=seed,
        adversaries=adversaries,
        alpha=alpha,
        require_significant=require_significant,
        domain=domain.name,
    )


def _train_only(overrides: Mapping[str, Any]) -> dict[str, Any]:
    keys = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in overrides.items() if k in keys}


def _params(method: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The full resolved config of a cell, validated like any user config."""
    return config_to_dict(get_method(method).make_config(values))


def seed_values(s: PairsSettings) -> list[int]:
    return [s.seed + k for k in range(s.seeds)]


def stage1_cells(s: PairsSettings) -> list[Cell]:
    """M single-task and M(M−1)/2 pair runs per seed."""
    labels = {"domain": s.domain}
    cells = []
    for seed in seed_values(s):
        for a in s.attributes:
            cells.append(
                Cell(
                    id=f"single:{a}:seed={seed}",
                    stage="single",
                    method="stl",
                    params=_params("stl", {**s.train, "task": a}),
                    seed=seed,
                    tasks=(a,),
                    labels=labels,
                )
            )
        for a, b in itertools.combinations(s.attributes, 2):
            a, b = sorted((a, b))  # an id that does not depend on the order given
            cells.append(
                Cell(
                    id=f"pair:{a}+{b}:seed={seed}",
                    stage="pair",
                    method="mtl",
                    params=_params("mtl", {**s.train, "tasks": [a, b]}),
                    seed=seed,
                    tasks=(a, b),
                    labels=labels,
                )
            )
    return cells


def stage3_cells(s: PairsSettings, partners: Mapping[str, Partner]) -> list[Cell]:
    """One adversarial run per attribute with a partner, per λ and seed."""
    labels = {"domain": s.domain}
    cells = []
    for seed in seed_values(s):
        for a in s.attributes:
            group = partners[a].partners
            if not group:
                continue
            for lam in s.lambdas:
                params = _params(
                    "aal",
                    {**s.train, **s.adversarial, "main": [a], "adversaries": group, "lam": lam},
                )
                cells.append(
                    Cell(
                        id=f"adv:{a}~{'+'.join(group)}:lam={lam:g}:seed={seed}",
                        stage="adversarial",
                        method="aal",
                        params=params,
                        seed=seed,
                        tasks=(a,),
                        aux=tuple(group),
                        labels=labels,
                    )
                )
    return cells
