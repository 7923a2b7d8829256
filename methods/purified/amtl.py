"""`amtl`: adversarial multi-task learning, a baseline of the Purified Learning
paper (appendix B, after Shinohara 2016): the multi-task model (shared
extractor; target task on the target set, irrelevant label on the irrelevant
set) with a gradient reversal layer before the irrelevant head. This is AAL's
reversal update (`aal`, eq. 5–6) with the adversary scored on batches of the
irrelevant set, under PL's protocol. The paper gives no reversal weight; λ = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..aal.kernel import AALConfig
from ..aal.kernel import train as aal_train
from ..core.config import meta
from ..core.registry import register_method
from .protocol import PLProtocol


@dataclass(frozen=True)
class AMTLConfig(PLProtocol, AALConfig):
    """Adversarial multi-task learning: GRL before the irrelevant head (PL appendix B)."""

    lam: float = field(
        default=1.0, metadata=meta("gradient reversal weight (not in PL: 1)", min=0.0)
    )


register_method("amtl", config=AMTLConfig)(aal_train)
