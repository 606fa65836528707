"""Keyed randomness: every random choice in negmine is a pure function of (seed, ids).

No global generator state: a negative drawn for ``(query, document)`` is the same whatever the
batch, shard, worker or order that computes it, so runs are byte-identical for any block size and
any engine. ``mix`` is splitmix64's finaliser; ``string_keys`` hashes id strings (blake2b, stable
across runs and platforms); ``uniform`` turns ``(seed, key_a, key_b)`` into a float in (0, 1) and
``gumbel`` a uniform into Gumbel noise (Gumbel-top-k draws without replacement).

Salts separate streams that hash the same ids; every salt is named here, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

# --------------------------------------------------------------------------------------- salts
HIDE_SALT = 0x41D3_5A17_0000_0001  # text: hide_fraction (independent of the samplers' noise)
CALIBRATION_SALT = 0xCA11  # text: the calibration's pseudo-hidden positives (seed ^ salt)
BATCH_SAMPLER_SALT = 0xBA7C4  # text: negmine.text.st's batch sampler (numpy generator seed part)
BLOOM_SALTS = (np.uint64(0x5851F42D4C957F2D), np.uint64(0x14057B7EF767814F))  # membership: Bloom hashes
KG_SIDE_SALTS = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))  # kg: head / tail side
KG_STREAM_SALT = np.uint64(0x452821E638D01377)  # kg: the streaming engine
KG_POOL_SALT = np.uint64(0xBE5466CF34E90C6C)  # kg: the pool engine's candidate draw
KG_FILL_SALT = np.uint64(0xC0AC29B7C97C50DD)  # kg: the pool engine's top-up draw
KG_RELATION_SALT = np.uint64(0xA5A5A5A5)  # kg: relation keys of a graph without string ids
REC_SCORE_STREAM = np.uint64(0xFFFF << 40)  # rec: Gumbel noise of the score-based samplers

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    z = x + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def string_keys(ids: Sequence[str]) -> np.ndarray:
    """``uint64`` hash of each id string (stable across runs and platforms)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for s in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def uniform(seed: int, query_keys: np.ndarray, doc_keys: np.ndarray) -> np.ndarray:
    """``float64`` in (0, 1) derived from ``(seed, query, doc)`` only; shapes broadcast."""
    with np.errstate(over="ignore"):
        s = mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        z = mix(mix(s ^ query_keys[..., None]) ^ doc_keys)
    return ((z >> np.uint64(12)).astype(np.float64) + 0.5) / float(1 << 52)  # 52 bits: never rounds to 1



def uniform_pairs(seed: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``float64`` in (0, 1) from ``(seed, a[i], b[i])``, elementwise (``uniform`` is outer in its
    last axis)."""
    with np.errstate(over="ignore"):
        s = mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        z = mix(mix(s ^ a) ^ b.astype(np.uint64))
    return ((z >> np.uint64(12)).astype(np.float64) + 0.5) / float(1 << 52)


def gumbel(u: np.ndarray) -> np.ndarray:
    """Standard Gumbel noise from uniforms in (0, 1): ``-log(-log(u))``."""
    return -np.log(-np.log(u))
