"""Run a command and report its wall time and peak memory, split into anonymous and file-backed.

    python benchmarks/peakmem.py [--json OUT.json] -- negmine mine ...

A process that memory-maps large files (embedding caches, ``--doc-embeddings``) has those pages
counted in its RSS while they are resident, although they are clean page cache the kernel drops
under pressure. ``ru_maxrss`` (what ``/usr/bin/time`` prints) cannot tell the two apart, so this
samples ``/proc/PID/status`` (``RssAnon``, ``RssFile``, ``RssShmem``) of the command and its
children every ``--interval`` seconds and reports the peaks beside ``ru_maxrss``. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc/*/stat parent ids)."""
    parent: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parent.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parent.get(pid, []))
    return out


def _status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the command after --")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = {"anon_mb": 0.0, "file_mb": 0.0, "total_mb": 0.0}
    while proc.poll() is None:
        tot = {"RssAnon": 0, "RssFile": 0, "RssShmem": 0}
        for pid in _tree(proc.pid):
            for k, v in _status_kb(pid).items():
                tot[k] += v
        anon, file_ = tot["RssAnon"] / 1024, (tot["RssFile"] + tot["RssShmem"]) / 1024
        peak["anon_mb"] = max(peak["anon_mb"], anon)
        peak["file_mb"] = max(peak["file_mb"], file_)
        peak["total_mb"] = max(peak["total_mb"], anon + file_)
        time.sleep(args.interval)
    wall = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res = {"command": cmd, "returncode": proc.returncode, "wall_s": round(wall, 1),
           "ru_maxrss_mb": round(maxrss), **{k: round(v) for k, v in peak.items()}}
    line = (f"exit {proc.returncode}  wall {wall:.1f} s  peak RSS (ru_maxrss) {maxrss:.0f} MB  "
            f"sampled peaks: anonymous {peak['anon_mb']:.0f} MB, file-backed {peak['file_mb']:.0f} MB, "
            f"sum {peak['total_mb']:.0f} MB")
    print(line, file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    sys.exit(proc.returncode if proc.returncode >= 0 else 128 - proc.returncode)


if __name__ == "__main__":
    os.environ.setdefault("NEGMINE_PROGRESS", "0")
    main()
