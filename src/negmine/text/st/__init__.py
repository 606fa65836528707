"""negmine inside a user's own ``SentenceTransformerTrainer`` (extra ``train``).

Three pieces that compose with sentence-transformers' own API, all built from a negmine run
(a :class:`~negmine.MiningResult`, or a mining directory through :func:`load_run`):

- :class:`MinedBatchSampler` — batches with no known positive or likely false negative of another
  row among a row's in-batch negatives, made hard from the run's neighbour graph (``hardness``);
  pass ``MinedBatchSampler.factory(run)`` as the training arguments' ``batch_sampler``.
- :class:`FalseNegativeMasking` — wraps MNRL / cached MNRL and masks in-batch candidates that
  score like a known positive, with a bound calibrated on the known positives.
- :class:`RemineCallback` — re-mines with the model being trained every N steps or epochs and
  swaps the dataset's negative columns in place.

>>> from negmine.text.st import MinedBatchSampler, FalseNegativeMasking, RemineCallback   # doctest: +SKIP
>>> sampler = MinedBatchSampler.factory(result, hardness=0.5)                         # doctest: +SKIP
>>> args = SentenceTransformerTrainingArguments("out", batch_sampler=sampler)         # doctest: +SKIP
>>> loss = FalseNegativeMasking(MultipleNegativesRankingLoss(model), target=0.05)    # doctest: +SKIP
>>> trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=result.to_dataset("n-tuple"),
...     loss=loss, callbacks=[RemineCallback(result, model, every_steps=500), loss.callback()])  # doctest: +SKIP

``import negmine.text.st`` imports neither torch nor sentence-transformers; each name loads on first use.
"""

from __future__ import annotations

from negmine.core.lazy import lazy_attributes

__all__ = ["FalseNegativeMasking", "MinedBatchSampler", "RemineCallback", "RunIndex", "calibrated_bound",
           "count_collisions", "load_run", "row_keys"]

_LAZY = {
    "FalseNegativeMasking": "negmine.text.st.masking",
    "calibrated_bound": "negmine.text.st.masking",
    "MinedBatchSampler": "negmine.text.st.sampler",
    "count_collisions": "negmine.text.st.sampler",
    "RemineCallback": "negmine.text.st.callback",
    "RunIndex": "negmine.text.st.index",
    "row_keys": "negmine.text.st.index",
    "load_run": "negmine.text.st.run",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
