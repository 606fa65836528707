"""Re-mining during training (``remine_every``, see :mod:`negmine.text.train.trainer`): the query set of
a mining output mined again with the model being trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from negmine.core.errors import DataError
from negmine.text.train.models import LiveEncoder
from negmine.text.train.rows import trim_rows


class Remining:
    """Re-mines the query set of a mining output with the live model (see the module docstring).

    Parameters
    ----------
    manifest
        The mined directory's manifest; its ``options`` hold the mining settings.
    encoder
        The :class:`LiveEncoder` of the model being trained (``None``: mine with the recorded
        retriever, as :func:`negmine.text.st.load_run` does).
    num_negatives
        Negatives per training row (the mined rows are trimmed to this many).
    """

    def __init__(self, manifest: dict[str, Any], encoder: LiveEncoder | None, num_negatives: int) -> None:
        self.manifest = manifest
        self.encoder = encoder
        self.num_negatives = num_negatives
        self.options: dict[str, Any] = {}
        self.data: Any = None
        self.retriever_name = ""
        self.result: Any = None  # the MiningResult of the last remine()

    def prepare(self) -> None:
        """Load the mining input data now, so a missing or changed input fails before training."""
        from negmine.text.options import DEFAULTS, load_data

        opts = self.manifest.get("options")
        if not isinstance(opts, dict):
            raise DataError("the mining output records no options (it was not written by 'negmine mine'); "
                            "re-mining needs them: mine with 'negmine mine' or train without --remine-every")
        self.options = {**DEFAULTS, **{k: v for k, v in opts.items() if k in DEFAULTS}}
        for key in ("dataset", "corpus", "queries", "qrels", "pairs"):
            p = self.options.get(key)
            if p and not Path(p).exists():
                raise DataError(f"{p}: mining input not found; re-mining reads the data the mining run read "
                                "(relative paths are relative to where 'negmine mine' ran): run from there")
        self.data = load_data(self.options)
        want = self.manifest.get("data_fingerprint")
        if want and self.data.fingerprint() != want:
            raise DataError("the mining input data changed since it was mined (fingerprint differs); "
                            "re-mine with 'negmine mine' before training with --remine-every")

    def _retriever(self) -> Any:
        from negmine.text.options import build_retriever
        from negmine.text.retrievers.embedding import EmbeddingRetriever

        if self.encoder is None:
            raise ValueError("Remining.remine needs the live model's encoder")
        o = dict(self.options)
        if o["retriever"] in ("bm25", "precomputed"):
            o["retriever"] = "dense"
        retriever = build_retriever(o)

        def attach(r: Any) -> None:
            if isinstance(r, EmbeddingRetriever):
                r.encoder = self.encoder
            for m in getattr(r, "members", []) or []:
                attach(m)

        attach(retriever)
        self.retriever_name = o["retriever"]
        return retriever

    def remine(self) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]], dict[str, Any]]:
        """``(rows, texts, stats)`` of a fresh mining pass with the live model."""
        from negmine.text.options import mine_from_options

        # the one orchestration path: the same filters, sampler, scorers and calibration as the
        # mining run, with the live model as the retriever's encoder
        result = mine_from_options(self.options, data=self.data, retriever=self._retriever())
        self.result = result
        rows = result.to_rows()
        stats = {"retriever": self.retriever_name, "shortfall_queries": int((result.columns < 0).any(axis=1).sum()),
                 "timings": {k: round(float(v), 4) for k, v in result.timings.items()}}
        return trim_rows(rows, self.num_negatives), result.texts(), stats
