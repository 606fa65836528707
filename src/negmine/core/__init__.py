"""The domain-free core: keyed randomness, positives, selection, membership, statistics,
atomic I/O, run directories, manifests, registries. Imports nothing outside itself."""
