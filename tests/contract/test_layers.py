"""The import contract of the layout: ``cli -> domains (text, rec, kg) -> core``, and no cycles.

Read from the source (AST), every ``import`` / ``from ... import`` of a ``negmine`` module counts,
at module level or inside a function, except those under ``if TYPE_CHECKING:`` (annotations
only). Layers:

- ``negmine.core`` imports nothing of negmine outside itself;
- a domain (``negmine.text``, ``negmine.rec``, ``negmine.kg``) imports the core and itself, and
  no other domain, except the edges listed in ``ALLOWED`` (each with its reason);
- ``negmine.cli`` and the package root (``negmine``, ``negmine.__main__``, ``negmine._aliases``)
  sit on top and may import anything (the CLI reads ``negmine.__version__``); no domain and
  nothing in the core imports them.

No module reaches itself again through the graph: a cycle is a layering fault even when Python
happens to resolve it at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import negmine

SRC = Path(negmine.__file__).resolve().parent
DOMAINS = ("text", "rec", "kg")
TOP = ("negmine", "negmine.__main__", "negmine._aliases")
#: (importer prefix, imported prefix): why the edge is allowed
ALLOWED = {
    ("negmine.kg", "negmine.text.encoders"): "lemon clusters entity descriptions with a text encoder",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The negmine modules ``path`` (module ``name``) imports, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("negmine"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("negmine"):
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.add(sub if sub in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imports(path, name, known) if m in known or m.startswith("negmine")}
            for name, path in mods.items()}


def layer(name: str) -> str:
    if name in TOP:
        return "top"
    part = name.split(".")[1]
    return part if part in ("core", "cli", *DOMAINS) else "top"


def test_layers_import_only_downwards() -> None:
    faults = []
    for mod, deps in sorted(graph().items()):
        mine = layer(mod)
        for dep in sorted(deps):
            theirs = layer(dep)
            if mine == theirs or mine in ("top", "cli"):
                continue
            if theirs == "core":
                continue
            if any(mod.startswith(a) and dep.startswith(b) for a, b in ALLOWED):
                continue
            faults.append(f"{mod} ({mine}) imports {dep} ({theirs})")
    assert not faults, "layering faults:\n" + "\n".join(faults)


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
                continue
            if w not in g:
                continue
            if w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(g[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def test_no_import_cycles() -> None:
    cycles = _cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_contract_sees_a_violation() -> None:
    """The checks themselves: a made-up graph with an upward edge and a cycle is caught."""
    g = {"negmine.core.a": {"negmine.text.b"}, "negmine.text.b": {"negmine.core.a"}}
    assert _cycles(g) == [["negmine.core.a", "negmine.text.b"]]
    assert layer("negmine.core.a") == "core" and layer("negmine.cli.main") == "cli" and layer("negmine") == "top"


def test_rec_and_kg_do_not_reach_into_text() -> None:
    """The issue's check: no rec or kg module imports the text domain's audit, compare, samplers,
    report or writers (they use the core's statistics, keys, run directory and writers)."""
    bad = [f"{mod} imports {dep}" for mod, deps in graph().items() if mod.startswith(("negmine.rec", "negmine.kg"))
           for dep in deps if dep.startswith(tuple(f"negmine.{x}" for x in (
               "audit", "compare", "samplers", "report", "writers", "text.audit", "text.compare", "text.samplers",
               "text.report", "text.writers")))]
    assert not bad, "\n".join(bad)
