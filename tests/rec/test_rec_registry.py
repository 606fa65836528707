"""rec's registries: every entry loads, declares exactly its constructor's keywords, and the
factories (make_sampler, make_scorer) build through them."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.rec.data import from_arrays, split_interactions
from negmine.rec.registry import SAMPLERS, SCORERS, sampler_options
from negmine.rec.samplers import DNS, LiveDNS, Mixed, Popularity, Robust, Uniform, make_sampler
from negmine.rec.scorers import fit_implicit, load_embeddings, make_scorer

DATA = split_interactions(from_arrays([1, 1, 2, 2, 3, 3], [10, 11, 10, 12, 11, 12]), "random", 0)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_sampler_entries_load_and_declare_their_keywords(name: str) -> None:
    entry = SAMPLERS.get(name)
    cls = entry.load()
    assert cls.name == name
    params = [p for p in inspect.signature(cls).parameters if p != "self"]
    assert [o.keyword for o in entry.options] == ([] if name == "mixed" else params)


def test_make_sampler_builds_what_the_classes_build() -> None:
    opts = {"alpha": 0.5, "candidates": 3, "temperature": 0.2, "guard_margin": 0.1, "guard_similarity": 0.9}
    expected = {"uniform": Uniform(), "popularity": Popularity(0.5), "dns": DNS(3), "robust": Robust(3, 0.2),
                "live-dns": LiveDNS(3, 0.1, 0.9)}
    for name, sampler in expected.items():
        built = make_sampler(name, **opts)
        assert type(built) is type(sampler) and built.config() == sampler.config()
    mixed = make_sampler("mixed", mix={"uniform": 1.0, "robust": 3.0}, **opts)
    assert isinstance(mixed, Mixed)
    assert mixed.config() == Mixed([(Uniform(), 1.0), (Robust(3, 0.2), 3.0)]).config()


def test_make_sampler_refusals_name_the_registered_samplers() -> None:
    with pytest.raises(ConfigError, match=r"unknown sampler 'nope'; use one of uniform, popularity, dns, robust, "
                                          r"live-dns, mixed$"):
        make_sampler("nope")
    with pytest.raises(ConfigError, match="robust sampler: option temperature"):
        make_sampler("robust", temperature=0.0)
    with pytest.raises(ConfigError, match="needs shares"):
        make_sampler("mixed")


def test_the_cli_applies_sampler_options_as_the_registry_declares() -> None:
    """The CLI refuses a sampler option by the entries' declarations (no table of its own)."""
    from negmine.cli.rec import _applies

    assert _applies() == sampler_options()
    assert sampler_options()["alpha"] == ("popularity",) and sampler_options()["mix"] == ("mixed",)


@pytest.mark.parametrize("name", SCORERS.names())
def test_scorer_entries_declare_their_keywords(name: str) -> None:
    fn = SCORERS.get(name).load()
    params = [p for p in inspect.signature(fn).parameters if p != "data"]
    assert [o.keyword for o in SCORERS.get(name).options] == params


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_make_scorer_fits_what_fit_implicit_fits(kind: str) -> None:
    pytest.importorskip("implicit")
    a = make_scorer(kind, DATA, factors=3, iterations=2, seed=1)
    b = fit_implicit(DATA.train, DATA.n_items, kind, factors=3, iterations=2, seed=1)
    assert a.info == b.info
    assert np.array_equal(a.user_factors, b.user_factors) and np.array_equal(a.item_factors, b.item_factors)


def test_make_scorer_embeddings_and_refusals(tmp_path: Path) -> None:
    f = tmp_path / "e.npz"
    np.savez(f, user_ids=[1, 2, 3], user_vectors=np.eye(3, 2), item_ids=[10, 11, 12], item_vectors=np.eye(3, 2) * 2)
    got = make_scorer("embeddings", DATA, embeddings=f)
    want = load_embeddings(f, DATA.interactions.user_ids, DATA.interactions.item_ids)
    assert np.array_equal(got.user_factors, want.user_factors) and got.info == want.info
    with pytest.raises(ConfigError, match="needs a file"):
        make_scorer("embeddings", DATA)
    with pytest.raises(ConfigError, match="unknown scorer 'svd'; known scorers: als, bpr, embeddings"):
        make_scorer("svd", DATA)
