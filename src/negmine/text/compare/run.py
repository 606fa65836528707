"""The steps of :func:`negmine.text.compare.compare` (mine, audit, train, evaluate) and the
``compare-state.json`` record that lets a re-run reuse them (see :mod:`negmine.text.compare`)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from negmine.core.errors import DataError
from negmine.text.compare.sweep import Setting, Sweep
from negmine.text.options import DEFAULTS
from negmine.text.types import Candidates, MiningData, RunContext

log = logging.getLogger(__name__)

STATE = "compare-state.json"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__}); delete it to recompute the step") from None
    if not isinstance(out, dict):
        raise DataError(f"{path}: not a JSON object; delete it to recompute the step")
    return out


class _State:
    """``compare-state.json`` of one run directory: per step, the key of its inputs, the hash of
    its output file and the seconds it took when it was computed."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE
        self.steps: dict[str, Any] = read_json(self.path).get("steps", {}) if self.path.is_file() else {}

    def fresh(self, step: str, key: str, output: Path) -> dict[str, Any] | None:
        entry = self.steps.get(step)
        if not entry or entry.get("key") != key or not output.is_file():
            return None
        return entry if _file_sha(output) == entry.get("output_sha256") else None

    def record(self, step: str, key: str, output: Path, seconds: float) -> dict[str, Any]:
        from negmine.core.atomic import write_json

        entry = {"key": key, "output": output.name, "output_sha256": _file_sha(output), "seconds": round(seconds, 4),
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.steps[step] = entry
        write_json(self.path, {"steps": self.steps})
        return entry


class Runner:
    """Runs the steps, sharing data, retrievers, candidates and scorers between settings."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.data_: dict[str, MiningData] = {}
        self.retrievers_: dict[str, Any] = {}
        self.candidates_: dict[tuple[str, str, int], Candidates] = {}
        self.scorers_: dict[str, Any] = {}
        self.eval_data_: MiningData | None = None

    # shared resources -------------------------------------------------------------------
    def data(self, o: dict[str, Any]) -> tuple[str, MiningData]:
        from negmine.text.options import load_data

        key = _digest({k: o[k] for k in ("dataset", "split", "exclude_splits", "drop_unknown", "min_relevance")})
        if key not in self.data_:
            self.data_[key] = load_data(o)
        return key, self.data_[key]

    def eval_data(self) -> MiningData:
        if self.eval_data_ is None:
            from negmine.text.data import load_beir

            self.eval_data_ = load_beir(self.sweep.dataset, self.sweep.eval_split, exclude_splits=[])
        return self.eval_data_

    def retriever(self, o: dict[str, Any]) -> tuple[str, Any]:
        from negmine.text.options import build_retriever

        built = build_retriever(o)
        key = json.dumps(built.config(), sort_keys=True, default=str)
        return key, self.retrievers_.setdefault(key, built)

    def scorers(self, o: dict[str, Any]) -> list[Any]:
        from negmine.text.options import build_scorers

        out = []
        for s in build_scorers(o):
            out.append(self.scorers_.setdefault(json.dumps(s.config(), sort_keys=True, default=str), s))
        return out

    def candidates(self, rkey: str, retriever: Any, dkey: str, data: MiningData, k: int,
                   cache_dir: Any) -> tuple[Candidates, bool]:
        """``(candidates, shared)``: retrieved once per (retriever, data, depth)."""
        from negmine.text.pipeline import retrieve

        key = (rkey, dkey, k)
        if key in self.candidates_:
            return self.candidates_[key], True
        ctx = RunContext(cache_dir=str(cache_dir) if cache_dir else None)
        cand = retrieve(data, retriever, k, ctx)
        self.candidates_[key] = cand
        return cand, False

    # steps ------------------------------------------------------------------------------
    def options(self, s: Setting, seed: int, out: Path | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``(mining options, default-policy record)`` of setting ``s``: a ``policy = "default"``
        setting gets the policy ``negmine mine`` would choose on the train split (the record says
        which and why); any other setting its options as written."""
        o = self.sweep.mine_options(s, seed, out)
        if not s.default_policy:
            return o, None
        from negmine.text.options import apply_default_policy

        return apply_default_policy(o, self.data(o)[1])

    def mine(self, s: Setting, seed: int, run_dir: Path, state: _State) -> dict[str, Any]:
        from negmine.text.options import mine_from_options, plan_from_options, recorded

        mined_dir = run_dir / "mined"
        o, policy = self.options(s, seed, mined_dir)
        dkey, data = self.data(o)
        rkey, retriever = self.retriever(o)
        scorers = self.scorers(o)
        p = plan_from_options(o, data, retriever, scorers, policy)
        key = p.run_id(data)
        manifest = mined_dir / "manifest.json"
        entry = state.fresh("mine", key, manifest)
        if entry is not None and read_json(manifest).get("run_id") == key:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        cand, shared = self.candidates(rkey, retriever, dkey, data, p.depth, o["cache_dir"])
        mine_from_options({**o, "overwrite": True}, data=data, retriever=retriever, scorers=scorers, candidates=cand,
                          out=mined_dir, extra_manifest={"options": recorded(o)}, policy=policy)
        entry = state.record("mine", key, manifest, time.perf_counter() - t0)
        return {"status": "done", "retrieval_shared": shared, **entry}

    def audit(self, s: Setting, seed: int, run_dir: Path, state: _State, mine_entry: dict[str, Any]) -> dict[str, Any]:
        """Hidden-positive FNR of the setting's filters and sampler on its own retrieval, with
        ``audit_hide_fraction`` of each query's positives hidden (seeded by ``seed``)."""
        from negmine.core.atomic import write_json
        from negmine.text import audit as A
        from negmine.text.filters import ExcludePositives
        from negmine.text.options import build_filters, build_sampler
        from negmine.text.pipeline import mine, resolve_depth

        fraction = float(self.sweep.audit_hide_fraction or 0.5)
        path = run_dir / "audit.json"
        key = _digest({"mined": mine_entry["output_sha256"], "hide_fraction": fraction})
        entry = state.fresh("audit", key, path)
        if entry is not None:
            return {"status": "reused", **entry, "metrics": read_json(path)}
        t0 = time.perf_counter()
        o, _ = self.options(s, seed)  # the run's own choice (calibrate, or the preset), measured on the visible half
        dkey, data = self.data(o)
        rkey, retriever = self.retriever(o)
        filters = build_filters(o)
        sampler = build_sampler(o)
        all_filters = [ExcludePositives(o["near_duplicates"]), *filters]
        k = resolve_depth(data, o["num_negatives"], all_filters, o["depth"])
        cand, _ = self.candidates(rkey, retriever, dkey, data, k, o["cache_dir"])
        split = A.hide_fraction(data, fraction, seed)
        vcand = A.restrict(cand, data.positives, split.visible.positives, len(data.corpus))
        # mined as the run was, on the visible half: a calibrated setting chooses its policy there
        # (the audit measures that policy, never one it was told); references (max, pair) as the run's
        res = mine(split.visible, retriever, filters, sampler, o["num_negatives"], seed, depth=k,
                   near_duplicates=o["near_duplicates"], cache_dir=o["cache_dir"], scorers=self.scorers(o),
                   target_fnr=o["target_fnr"], min_coverage=o["min_coverage"], candidates=vcand,
                   positive_reference=o["positive_reference"] or "min")
        metrics = {"hide_fraction": fraction, **A.negative_metrics(res, split.hidden)}
        write_json(path, metrics)
        entry = state.record("audit", key, path, time.perf_counter() - t0)
        return {"status": "done", **entry, "metrics": metrics}

    def train(self, s: Setting, seed: int, run_dir: Path, state: _State, mine_entry: dict[str, Any]) -> dict[str, Any]:
        from negmine.text.train.trainer import RECORD, train

        options = self.sweep.train_options(s, seed)
        model_dir = run_dir / "model"
        key = _digest({"mined": mine_entry["output_sha256"], "options": options})
        entry = state.fresh("train", key, model_dir / RECORD)
        if entry is not None:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        train(run_dir / "mined", model_dir, overwrite=True, **options)
        entry = state.record("train", key, model_dir / RECORD, time.perf_counter() - t0)
        return {"status": "done", **entry}

    def evaluate(self, state: _State, path: Path, retriever: Any, identity: dict[str, Any], *,
                 cache_dir: Any = None, label: dict[str, Any]) -> dict[str, Any]:
        from negmine.core.atomic import write_json
        from negmine.text.evaluate import evaluate

        data = self.eval_data()
        key = _digest({**identity, "eval_data": data.fingerprint(), "split": self.sweep.eval_split})
        entry = state.fresh("evaluate", key, path)
        if entry is not None:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        result = evaluate(data, retriever, cache_dir=cache_dir)
        write_json(path, {**label, "dataset": self.sweep.dataset, "split": self.sweep.eval_split,
                          "retriever": retriever.config(), **result.to_dict()})
        entry = state.record("evaluate", key, path, time.perf_counter() - t0)
        return {"status": "done", **entry}

    def dense_for_eval(self, model: str) -> Any:
        from negmine.text.options import build_retriever

        e = self.sweep.eval_options()
        return build_retriever({**DEFAULTS, "retriever": "dense", "model": model, **e})

    # runs -------------------------------------------------------------------------------
    def run_untrained(self, s: Setting) -> dict[str, Any]:
        from negmine.text.options import build_retriever

        run_dir = self.sweep.out / s.slug
        state = _State(run_dir)
        name = s.mine.get("retriever", "dense")
        if name == "bm25":
            retriever = build_retriever({**DEFAULTS, **self.sweep.mine, "retriever": "bm25"})
            identity: dict[str, Any] = {"retriever": retriever.config()}
        else:
            retriever = self.dense_for_eval(str(s.mine.get("model") or self.sweep.starting_model()))
            identity = {"retriever": retriever.config(), "weights": retriever._encoder().identity("document"),
                        "eval": self.sweep.eval_options()}
        # a model as it is (not trained here): its embeddings are worth caching
        ev = self.evaluate(state, run_dir / "metrics.json", retriever, identity,
                           cache_dir=self.sweep.mine.get("cache_dir"), label={"setting": s.name, "trained": False})
        log.info("%s: evaluate %s", s.name, ev["status"])
        return {"setting": s.name, "seed": None, "dir": str(run_dir), "steps": {"evaluate": ev},
                "reused": {"evaluate": ev["status"] == "reused"}}

    def run_trained(self, s: Setting, seed: int) -> dict[str, Any]:
        run_dir = self.sweep.out / s.slug / f"seed-{seed}"
        state = _State(run_dir)
        steps: dict[str, Any] = {}
        steps["mine"] = self.mine(s, seed, run_dir, state)
        log.info("%s seed %d: mine %s", s.name, seed, steps["mine"]["status"])
        if self.sweep.audit_hide_fraction is not None:
            steps["audit"] = self.audit(s, seed, run_dir, state, steps["mine"])
            log.info("%s seed %d: audit %s", s.name, seed, steps["audit"]["status"])
        steps["train"] = self.train(s, seed, run_dir, state, steps["mine"])
        log.info("%s seed %d: train %s", s.name, seed, steps["train"]["status"])
        model_dir = run_dir / "model"
        # a trained model is evaluated without the embedding cache (see the module docstring)
        retriever = self.dense_for_eval(str(model_dir))
        steps["evaluate"] = self.evaluate(
            state, run_dir / "metrics.json", retriever,
            {"model": steps["train"]["output_sha256"], "eval": self.sweep.eval_options()},
            label={"setting": s.name, "seed": seed, "trained": True, "model": str(model_dir)},
        )
        log.info("%s seed %d: evaluate %s", s.name, seed, steps["evaluate"]["status"])
        return {"setting": s.name, "seed": seed, "dir": str(run_dir), "steps": steps,
                "reused": {k: v["status"] == "reused" for k, v in steps.items()}}
