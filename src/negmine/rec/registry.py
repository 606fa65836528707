"""The recommendation domain's registries: samplers and scorers by short name, each entry a
``"module:attribute"`` with the options its constructor takes (declared once in
:mod:`negmine.rec.options`).

:func:`negmine.rec.samplers.make_sampler` and :func:`negmine.rec.scorers.make_scorer` build
through them; error messages read the registered names from them. Imports nothing heavy (the
components load on first use; ``Entry.missing()`` names the extras a scorer lacks).
"""

from __future__ import annotations

from dataclasses import replace

from negmine.core.registry import Option, Registry
from negmine.rec.options import OPTIONS

__all__ = ["SAMPLERS", "SCORERS", "sampler_options"]

_MOD = "negmine.rec.samplers"


def _opts(*keys: str) -> tuple[Option, ...]:
    return tuple(OPTIONS[k] for k in keys)


#: every rec sampler, in the order error messages list them
SAMPLERS = Registry("sampler")
SAMPLERS.register("uniform", f"{_MOD}:Uniform", "every allowed item equally likely (BPR's sampler)")
SAMPLERS.register("popularity", f"{_MOD}:Popularity", "p(i) ∝ count(i)^alpha over training positives (word2vec)",
                  options=_opts("alpha"))
SAMPLERS.register("dns", f"{_MOD}:DNS", "the hardest of M uniform candidates under a fixed scorer (Zhang et al. 2013)",
                  options=_opts("candidates"))
SAMPLERS.register("robust", f"{_MOD}:Robust", "hard but probably not liked: of M candidates, weight "
                  "exp(s/T)·σ(−(s − r_u)/T)² (after NBPO)", options=_opts("candidates", "temperature"))
SAMPLERS.register("live-dns", f"{_MOD}:LiveDNS", "DNS with the model being trained, behind an optional guard "
                  "(rec train / rec compare only)", options=_opts("candidates", "guard_margin", "guard_similarity"))
SAMPLERS.register("mixed", f"{_MOD}:Mixed", "stated shares of the plain samplers (--mix uniform=0.5,dns=0.5); "
                  "its parts are built samplers (parts=[(sampler, share), ...])")

#: the models behind dns, robust and the audit's hardness; each factory takes the split data first
SCORERS = Registry("scorer")
_IMPLICIT = ("implicit", "scipy", "threadpoolctl")
SCORERS.register("als", "negmine.rec.scorers:als_scorer", "implicit's ALS fitted on the training split (CPU)",
                 requires=_IMPLICIT, options=_opts("factors", "iterations", "seed"))
SCORERS.register("bpr", "negmine.rec.scorers:bpr_scorer", "implicit's BPR fitted on the training split (CPU, one "
                 "thread: the same factors on every run)", requires=_IMPLICIT, options=_opts("factors", "iterations",
                                                                                            "seed"))
SCORERS.register("embeddings", "negmine.rec.scorers:embeddings_scorer", "user/item vectors from one .npz",
                 options=(replace(OPTIONS["embeddings"], arg="path"),))


def sampler_options() -> dict[str, tuple[str, ...]]:
    """``{option key: the samplers that read it}``, from the entries' declarations (``mix``: the
    ``mixed`` sampler's shares)."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in SAMPLERS.entries.values():
        for o in entry.options:
            out[o.key] = (*out.get(o.key, ()), entry.name)
    out["mix"] = ("mixed",)
    return out
