"""Issue 27, part 7: no import circle between the modules of `crates/deployer/src` or
`crates/stack-model/src`. A module may use its children and its ancestors (a parent composes
its children; a child reads what its parent declares), but two modules that are not one
inside the other never reach each other, directly or through others: `deploy`, `diff` and the
hotswap share `stage_stack` instead of importing each other, and the pipeline's parts in
stack-model depend one way.

Reads the `crate::`, `super::` and `self::` paths of each file (tests modules left out), and
resolves each to the deepest module it names. Relies on nothing but the sources."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRATES = ["crates/deployer/src", "crates/stack-model/src"]


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def without_tests(text: str) -> str:
    """The file's code: without its `#[cfg(test)] mod tests { ... }` (at the end of a file, by
    custom) and without comments (a documentation link is not an import)."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
    text = text[: m.start()] if m else text
    return re.sub(r"//[^\n]*", "", text)


def split_top(body: str) -> list[str]:
    """`b, c::{d, e}` -> [`b`, `c::{d, e}`]: commas outside braces."""
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    return [i.strip() for i in items + [cur] if i.strip()]


def expand(path: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    path = re.sub(r"\s+", "", path)
    i = path.find("{")
    if i < 0:
        return [path]
    head = path[:i].rstrip(":")
    body = path[i + 1 : path.rindex("}")]
    out = []
    for item in split_top(body):
        for tail in expand(item):
            out.append(f"{head}::{tail}" if head else tail)
    return out


def references(text: str) -> list[tuple[str, list[str]]]:
    """(anchor, path segments) for every `crate::`, `super::` or `self::` path in the text:
    in `use` declarations (braces expanded) and in code."""
    refs = []
    for m in re.finditer(r"\buse\s+(crate|super|self)::([^;]*);", text):
        for p in expand(m.group(2)):
            refs.append((m.group(1), [x for x in p.split(" as ")[0].split("::") if x and x != "self"]))
    code = re.sub(r"\buse\s+[^;]*;", "", text)
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", code):
        refs.append((m.group(1), m.group(2)[2:].split("::")))
    return refs


def graph(src: Path) -> dict[tuple, set[tuple]]:
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = {m for m in files if not (m and m[-1] in ("tests", "mock_tests"))}
    edges: dict[tuple, set[tuple]] = {m: set() for m in modules}
    for m in modules:
        is_dir_module = files[m].stem in ("mod", "lib", "main")
        for anchor, segs in references(without_tests(files[m].read_text())):
            if anchor == "crate":
                base = ()
            elif anchor == "self":
                base = m if is_dir_module else m[:-1]
            else:
                here = m if is_dir_module else m
                base = here[:-1]
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
            target = base
            for s in segs:
                if base + (s,) in modules or target + (s,) in modules:
                    target = target + (s,)
                else:
                    break
            if target == m or m[: len(target)] == target or target[: len(m)] == m:
                continue  # itself, an ancestor, or one of its descendants
            edges[m].add(target)
    return edges


def circles(edges: dict[tuple, set[tuple]]) -> list[list[tuple]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("crate", CRATES)
def test_no_module_imports_one_that_imports_it(crate):
    edges = graph(ROOT / crate)
    found = circles(edges)
    names = ["{" + ", ".join("::".join(m) or "crate" for m in c) + "}" for c in found]
    assert not found, f"{crate}: import circles: {'; '.join(names)}"


def test_the_check_sees_a_circle():
    """The check itself: two sibling modules that use each other are a circle; a child that
    uses its parent is not."""
    edges = {("a",): {("b",)}, ("b",): {("a",)}, ("c",): set(), ("c", "d"): {("c",)}}
    assert circles(edges) == [[("a",), ("b",)]]
    text = "use crate::{cli::{Global, X}, aws::Aws};\nlet x = super::super::y::z();"
    refs = references(text)
    assert ("crate", ["cli", "Global"]) in refs and ("crate", ["aws", "Aws"]) in refs
    assert ("super", ["super", "y", "z"]) in refs
