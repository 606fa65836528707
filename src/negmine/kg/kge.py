"""A small KGE model through PyKEEN (extra ``kg``): the embeddings behind ``hard``/``hasa`` and the
scores behind the audit's hardness. Also reads user-supplied entity embeddings.

PyKEEN seeds torch's global generator from ``seed`` (its ``set_random_seed``); on CPU the same
seed and data give the same model.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError, NegmineError
from negmine.core.optional import require
from negmine.kg.data import KGData

__all__ = ["KGEModel", "fit_kge", "load_embeddings", "triples_factory"]

log = logging.getLogger(__name__)


def triples_factory(data: KGData, split: str = "train") -> Any:
    """A PyKEEN ``TriplesFactory`` of ``split`` with negmine's ids (labels sorted, as PyKEEN's)."""
    torch = require("torch")
    tf_mod = require("pykeen.triples")
    return tf_mod.TriplesFactory(
        mapped_triples=torch.as_tensor(data.splits[split], dtype=torch.long),
        entity_to_id={e: i for i, e in enumerate(data.entities)},
        relation_to_id={r: i for i, r in enumerate(data.relations)},
    )


@dataclass
class KGEModel:
    """A trained PyKEEN model with its entity embeddings ``float32[n_e, d]``."""

    model: Any
    name: str
    epochs: int
    seed: int

    @property
    def entity_embeddings(self) -> np.ndarray:
        rep = self.model.entity_representations[0]
        return np.asarray(rep(indices=None).detach().cpu().numpy(), dtype=np.float32).reshape(rep.max_id, -1)

    def score(self, triples: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """``float32[n]`` model scores of ``int64[n, 3]`` triples (higher = more plausible)."""
        torch = require("torch")
        t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        out = np.empty(len(t), dtype=np.float32)
        self.model.eval()
        with torch.no_grad():
            for a in range(0, len(t), batch_size):
                hrt = torch.as_tensor(t[a:a + batch_size])
                out[a:a + batch_size] = self.model.score_hrt(hrt).view(-1).cpu().numpy()
        return out


#: ``negative_sampler_kwargs["model"] = LIVE_MODEL``: give the sampler the model being trained
LIVE_MODEL = "live"


def fit_kge(data: KGData, *, model: str = "TransE", dim: int = 50, epochs: int = 50, batch_size: int = 256,
            lr: float = 0.01, seed: int = 0, negative_sampler: Any = None,
            negative_sampler_kwargs: dict[str, Any] | None = None) -> KGEModel:
    """Train ``model`` on the training triples with PyKEEN's sLCWA loop (Adam, margin loss).

    The options are checked against :mod:`negmine.kg.options` first; an unknown model or one
    PyKEEN cannot build from these arguments is a one-line :class:`ConfigError`."""
    from negmine.kg.options import check, check_model

    dim = check("dim", dim, "fit_kge")
    epochs = check("epochs", epochs, "fit_kge")
    batch_size = check("batch_size", batch_size, "fit_kge")
    lr = check("lr", lr, "fit_kge")
    seed = check("seed", seed, "fit_kge")
    check_model(model, "fit_kge model")
    from pykeen.models import model_resolver
    from pykeen.training import SLCWATrainingLoop
    from pykeen.utils import set_random_seed
    from torch.optim import Adam

    set_random_seed(seed)
    tf = triples_factory(data)
    try:
        m = model_resolver.make(model, triples_factory=tf, embedding_dim=dim, random_seed=seed)
        if negative_sampler_kwargs is not None and negative_sampler_kwargs.get("model") == LIVE_MODEL:
            negative_sampler_kwargs = {**negative_sampler_kwargs, "model": m}  # the sampler scores with it
        loop = SLCWATrainingLoop(model=m, triples_factory=tf, optimizer=Adam(params=m.get_grad_params(), lr=lr),
                                 negative_sampler=negative_sampler, negative_sampler_kwargs=negative_sampler_kwargs)
    except NegmineError:
        raise
    except (TypeError, ValueError, KeyError, NotImplementedError, AttributeError) as exc:  # PyKEEN refusing them
        msg = " ".join(str(exc).split())[:200]
        raise ConfigError(f"PyKEEN cannot build model {model!r} (dim {dim}, lr {lr}) on this graph: "
                          f"{exc.__class__.__name__}: {msg}; choose another --model or its options") from None
    log.info("training %s (dim %d) for %d epochs on %d triples", model, dim, epochs, len(data.train))
    from pykeen.training.training_loop import NoTrainingBatchError

    try:
        losses = loop.train(triples_factory=tf, num_epochs=epochs, batch_size=batch_size, use_tqdm=False,
                            use_tqdm_batch=False)
    except NoTrainingBatchError:
        raise ConfigError(f"{model}: batch size {batch_size} leaves no full training batch of the "
                          f"{len(data.train)} training triples; lower --batch-size") from None
    if losses and not np.isfinite(losses[-1]):
        raise ConfigError(f"training {model} diverged (loss {losses[-1]} after {epochs} epochs, lr {lr}); lower --lr")
    return KGEModel(m, model, epochs, seed)


def load_embeddings(path: str | Path, data: KGData) -> np.ndarray:
    """Entity embeddings ``float32[n_e, d]`` in id order from an ``.npz`` with ``entities``
    (labels, ``str[n]``) and ``embeddings`` (``float[n, d]``); every entity must be present."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: embeddings file not found; check the path")
    with p.open("rb") as fh:
        if fh.read(2) != b"PK":
            raise DataError(f"{p}: not an .npz file (a zip archive of arrays); save one with "
                            "numpy.savez(path, entities=labels, embeddings=vectors)")
    try:
        with np.load(p, allow_pickle=False) as z:
            labels = [str(x) for x in z["entities"]]
            raw = np.asarray(z["embeddings"])
            if raw.dtype.kind not in "fiu":
                raise DataError(f"{p}: embeddings have dtype {raw.dtype}; store real numbers (float32)")
            emb = raw.astype(np.float32)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{p}: expected an .npz with arrays 'entities' (labels) and 'embeddings' "
                        f"(float[n, d]) ({exc.__class__.__name__}); re-export it") from None
    if emb.ndim != 2 or emb.shape[0] != len(labels) or emb.shape[1] == 0:
        raise DataError(f"{p}: {len(labels)} labels but embeddings of shape {emb.shape}; one row of d > 0 numbers "
                        "per label")
    if len(set(labels)) != len(labels):
        from collections import Counter

        from negmine.core.errors import examples

        dup = sorted(x for x, n in Counter(labels).items() if n > 1)
        raise DataError(f"{p}: {len(dup)} entit{'y' if len(dup) == 1 else 'ies'} listed twice ({examples(dup)}); "
                        "keep one row per entity")
    if not np.isfinite(emb).all():
        from negmine.core.errors import examples

        bad = [labels[i] for i in np.flatnonzero(~np.isfinite(emb).all(axis=1))]
        raise DataError(f"{p}: {len(bad)} embedding(s) hold NaN or infinite values ({examples(bad)}); "
                        "re-export finite vectors")
    rows = data.entity_ids(labels, str(p))
    out = np.full((data.num_entities, emb.shape[1]), np.nan, dtype=np.float32)
    out[rows] = emb
    missing = [data.entities[i] for i in np.flatnonzero(np.isnan(out).any(axis=1))]
    if missing:
        from negmine.core.errors import examples

        raise DataError(f"{p}: no embedding for {len(missing)} entit{'y' if len(missing) == 1 else 'ies'} "
                        f"{examples(missing)}; add a row for every entity of the graph")
    return out
