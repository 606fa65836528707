"""Text retrieval: data, retrievers, filters, samplers, the mining pipeline, audits, training."""
