"""The trial plan of the pair search (the AAL paper's §3.3).

Stage 1: M single-attribute runs and M(M−1)/2 pair runs, each repeated for K
seeds (with `--seeds auto`, each cell for as many seeds as the rows it serves
need: `adaptive_seeds.py`). Stage 3: for each attribute with a negative partner, one adversarial run
per swept value (λ) and seed (with `--lambda-search halving`, seed by seed for the
λ values still in the race: `lambda_halving.py`). Which methods train these, and which of their
settings is swept, is the pair protocol's (`search_spaces/protocols/pairs.yaml`);
each builds its config from task names with its `for_tasks` hook. Cell ids depend
only on what a cell trains, so the plan of a rerun finds the cells already done.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from methods import get_method
from methods.core import TrainConfig, config_to_dict, task_specs
from methods.data import Dataset

from .adaptive_seeds import AdaptiveSeeds, CellKey
from .cells import Cell
from .errors import ConfigError, UserInputError
from .inputs import check_seeds
from .options import check_goes_with, default, describe
from .pair_analysis import Partner
from .protocols import PairsProtocol, load_pairs_protocol
from .spaces import bundled_space_path, load_space


@dataclass(frozen=True)
class PairsSettings:
    """Everything that decides which cells a pair search trains."""

    attributes: tuple[str, ...]
    train: dict[str, Any]  # TrainConfig fields, shared by the three kinds of run
    adversarial: dict[str, Any]  # the adversarial method's own (e.g. adversary_loss)
    lambdas: tuple[float, ...]
    protocol: PairsProtocol = field(default_factory=load_pairs_protocol)
    seeds: int = default("pairs", "seeds")  # with `adaptive`: its min_seeds, stage 3's seeds
    seed: int = default("pairs", "seed")
    adaptive: AdaptiveSeeds | None = None  # `--seeds auto`
    # "worst": the paper's pairwise AAL; "all": every negative partner
    adversaries: str = default("pairs", "adversaries")
    alpha: float = default("pairs", "alpha")
    require_significant: bool = default("pairs", "require_significant")
    # stage 3 again with the protocol's null-control settings
    null_control: bool = default("pairs", "null_control")
    # "halving": successive halving over λ (lambda_halving.py)
    lambda_search: str = default("pairs", "lambda_search")
    # halving: ⌈n / reduction_factor⌉ λ values go on per round
    reduction_factor: int = default("pairs", "reduction_factor")
    domain: str = field(default="")

    def identity(self, dataset: Dataset) -> dict[str, Any]:
        return {
            "search": f"{self.protocol.adversarial}-pairs",
            "dataset": dataset.fingerprint,
            "train": self.train,
            "adversarial": self.adversarial,
            "attributes": sorted(self.attributes),
        }

    def describe(self) -> dict[str, Any]:
        """What search.json records: the options `options.PAIRS` marks recorded."""
        return describe("pairs", self._option_value)

    def _option_value(self, name: str) -> Any:
        if self.adaptive is not None:
            if name == "seeds":
                return "auto"
            if name in ("min_seeds", "max_seeds", "certainty"):
                return getattr(self.adaptive, name)
        return getattr(self, name)


def default_lambdas(protocol: PairsProtocol) -> tuple[float, ...]:
    """Swept values of stage 3: the choices of the swept setting in the adversarial
    method's search space (the AAL paper's λ ∈ {0.01, 0.1, 0.3, 0.5, 1.0})."""
    space = load_space(bundled_space_path(protocol.adversarial), protocol.adversarial)
    param = space.params.get(protocol.sweep)
    if param is None or param.kind != "choice":
        raise UserInputError(
            f"{space.source} has no choice of '{protocol.sweep}' to sweep; pass --lambdas"
        )
    return tuple(float(v) for v in param.values)


def resolve_settings(
    dataset: Dataset,
    *,
    attributes: Sequence[str] | None,
    overrides: Mapping[str, Any],
    lambdas: Sequence[float] | None = None,
    seeds: int | str = default("pairs", "seeds"),
    seed: int = default("pairs", "seed"),
    adversaries: str = default("pairs", "adversaries"),
    alpha: float = default("pairs", "alpha"),
    require_significant: bool = default("pairs", "require_significant"),
    null_control: bool = default("pairs", "null_control"),
    min_seeds: int | None = None,
    max_seeds: int | None = None,
    certainty: float | None = None,
    lambda_search: str = default("pairs", "lambda_search"),
    reduction_factor: int | None = None,
) -> PairsSettings:
    """Validate a pair search completely, before anything is trained or written.
    Each argument is the option of its name (`options.PAIRS`); None: not given."""
    check_goes_with(
        "pairs",
        {
            "seeds": seeds,
            "min_seeds": min_seeds,
            "max_seeds": max_seeds,
            "certainty": certainty,
            "lambda_search": lambda_search,
            "reduction_factor": reduction_factor,
        },
    )
    protocol = load_pairs_protocol()
    owned_keys = protocol.owned_keys()
    owned = sorted(set(overrides) & owned_keys)
    if owned:
        raise ConfigError(
            f"'{owned[0]}' is set by the pair search itself; use --attributes and --lambdas"
        )
    adversarial = get_method(protocol.adversarial)
    allowed = [f.name for f in fields(adversarial.config_cls) if f.name not in owned_keys]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown setting '{unknown[0]}' for the pair search; valid: {', '.join(allowed)}"
        )
    domain = dataset.domain(str(overrides.get("domain", "")))
    if attributes is None:
        attributes = tuple(domain.binary_attributes())
        if len(attributes) < 2:
            raise UserInputError(
                f"a pair search needs at least 2 attributes, and domain '{domain.name}' has"
                f" {len(attributes)} of 0/1 labels ({', '.join(attributes) or 'none'}) among"
                f" {', '.join(domain.label_names)}; name class-label columns with --attributes"
            )
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

    lambdas = tuple(default_lambdas(protocol) if lambdas is None else lambdas)
    if not lambdas:
        raise UserInputError("--lambdas is empty; give at least one λ ≥ 0")
    for lam in lambdas:
        if not math.isfinite(lam) or lam < 0:
            raise UserInputError(f"λ={lam:g} is not allowed; λ values must be finite and ≥ 0")
    if len(set(lambdas)) != len(lambdas):
        raise UserInputError("--lambdas repeats a value")
    adaptive = None
    if seeds == "auto":
        adaptive = AdaptiveSeeds(
            min_seeds=default("pairs", "min_seeds") if min_seeds is None else min_seeds,
            max_seeds=default("pairs", "max_seeds") if max_seeds is None else max_seeds,
            alpha=alpha,
            certainty=default("pairs", "certainty") if certainty is None else certainty,
        )
        seeds = adaptive.min_seeds
    if isinstance(seeds, str):
        raise UserInputError(f"--seeds {seeds} is not allowed; use a whole number or auto")
    check_seeds(seeds, first=seed)
    if adaptive is not None:
        check_seeds(adaptive.max_seeds, "--max-seeds", first=seed)
    if lambda_search == "halving" and seeds < 2:
        raise UserInputError(
            "--lambda-search halving drops λ values between seeds; it needs --seeds 2 or more"
            " (or --seeds auto with --min-seeds 2 or more)"
        )
    if adversaries not in ("worst", "all"):
        raise UserInputError(f"--adversaries {adversaries}: choose worst or all")
    if not 0 < alpha < 1:
        raise UserInputError(f"--alpha {alpha} must be in (0, 1)")
    if require_significant and seeds < 2:
        raise UserInputError("--require-significant needs --seeds 2 or more")
    if lambda_search not in ("grid", "halving"):
        raise UserInputError(f"--lambda-search {lambda_search}: choose grid or halving")
    if reduction_factor is None:
        reduction_factor = default("pairs", "reduction_factor")
    if reduction_factor < 2:
        raise UserInputError(
            f"--reduction-factor {reduction_factor} is not allowed; give a whole number ≥ 2"
        )
    if null_control and not protocol.null_control:
        raise UserInputError(
            f"--null-control: the pair protocol {protocol.source} defines no null_control"
        )

    # One full config per kind of run, validated against the data: bad backbones,
    # bad values and missing splits stop here, not inside a trial.
    a, b = attributes[0], attributes[1]
    adversarial_config = adversarial.make_config(
        {**overrides, **adversarial.config_cls.for_tasks([a], [b])}
    )
    adversarial_config.check_data(dataset)
    for method, main in ((protocol.pair, [a, b]), (protocol.single, [a])):
        spec = get_method(method)
        values = {**_train_only(overrides), **spec.config_cls.for_tasks(main, [])}
        spec.make_config(values).check_data(dataset)
    resolved = config_to_dict(adversarial_config)
    train_keys = [f.name for f in fields(TrainConfig)]
    return PairsSettings(
        attributes=attributes,
        train={k: resolved[k] for k in train_keys},
        adversarial={
            k: v for k, v in resolved.items() if k not in train_keys and k not in owned_keys
        },
        lambdas=lambdas,
        protocol=protocol,
        seeds=seeds,
        seed=seed,
        adaptive=adaptive,
        adversaries=adversaries,
        alpha=alpha,
        require_significant=require_significant,
        null_control=null_control,
        lambda_search=lambda_search,
        reduction_factor=reduction_factor,
        domain=domain.name,
    )


def _train_only(overrides: Mapping[str, Any]) -> dict[str, Any]:
    keys = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in overrides.items() if k in keys}


def _params(
    method: str, main: Sequence[str], aux: Sequence[str], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The full resolved config of a cell, validated like any user config."""
    spec = get_method(method)
    return config_to_dict(spec.make_config({**values, **spec.config_cls.for_tasks(main, aux)}))


def seed_values(s: PairsSettings) -> list[int]:
    return [s.seed + k for k in range(s.seeds)]


def stage1_cells(s: PairsSettings) -> list[Cell]:
    """M single-attribute and M(M−1)/2 pair runs per seed."""
    cells = []
    for seed in seed_values(s):
        for a in s.attributes:
            cells.append(_single(s, a, seed))
        for a, b in itertools.combinations(s.attributes, 2):
            cells.append(_pair(s, a, b, seed))
    return cells


def stage1_keys(s: PairsSettings) -> list[CellKey]:
    """The cells of the matrix, each once: ("a",) single, ("a", "b") sorted pair."""
    singles: list[CellKey] = [(a,) for a in s.attributes]
    return singles + [tuple(sorted(p)) for p in itertools.combinations(s.attributes, 2)]


def stage1_cells_for(s: PairsSettings, seeds: Mapping[CellKey, int]) -> list[Cell]:
    """Stage 1 with each cell's own number of seeds (`--seeds auto`)."""
    cells = []
    for key in stage1_keys(s):
        for k in range(seeds[key]):
            seed = s.seed + k
            cells.append(
                _single(s, key[0], seed) if len(key) == 1 else _pair(s, key[0], key[1], seed)
            )
    return cells


def stage1_id(key: CellKey, seed: int) -> str:
    """The id of a stage-1 cell: what it trains, never when."""
    if len(key) == 1:
        return f"single:{key[0]}:seed={seed}"
    a, b = sorted(key)  # an id that does not depend on the order given
    return f"pair:{a}+{b}:seed={seed}"


def _single(s: PairsSettings, a: str, seed: int) -> Cell:
    p = s.protocol
    return Cell(
        id=stage1_id((a,), seed),
        stage="single",
        method=p.single,
        params=_params(p.single, [a], [], s.train),
        seed=seed,
        tasks=(a,),
        domain=s.domain,
    )


def _pair(s: PairsSettings, a: str, b: str, seed: int) -> Cell:
    a, b = sorted((a, b))
    p = s.protocol
    return Cell(
        id=stage1_id((a, b), seed),
        stage="pair",
        method=p.pair,
        params=_params(p.pair, [a, b], [], s.train),
        seed=seed,
        tasks=(a, b),
        domain=s.domain,
    )


def stage3_cells(
    s: PairsSettings,
    partners: Mapping[str, Partner],
    *,
    null: bool = False,
    race: Mapping[str, Sequence[float]] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[Cell]:
    """One adversarial run per attribute with a partner, per swept value and seed;
    `null`: the same runs with the protocol's null-control settings (the partner's
    labels shuffled), stage "null". `race` and `seeds` narrow it to the λ values of
    each attribute still in a halving race and the seeds of one round."""
    p = s.protocol
    stage, prefix = ("null", "null") if null else ("adversarial", "adv")
    cells = []
    for seed in seed_values(s) if seeds is None else seeds:
        for a in s.attributes:
            group = partners[a].partners
            if not group or (race is not None and a not in race):
                continue
            for lam in s.lambdas if race is None else race[a]:
                values = {**s.train, **s.adversarial, p.sweep: lam}
                if null:
                    values.update(p.null_control)
                cells.append(
                    Cell(
                        id=f"{prefix}:{a}~{'+'.join(group)}:{p.sweep}={lam:g}:seed={seed}",
                        stage=stage,
                        method=p.adversarial,
                        params=_params(p.adversarial, [a], group, values),
                        seed=seed,
                        tasks=(a,),
                        aux=tuple(group),
                        domain=s.domain,
                    )
                )
    return cells
