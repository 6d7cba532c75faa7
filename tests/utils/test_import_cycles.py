"""No import circle inside mmseg_ext: module A importing B importing ... A.

Function-level imports count: a circle that only closes inside a function still ties the
two modules together (each needs the other to be read) and hides which one is lower.
The layer rule (test_layers.py) keeps packages in order; this test keeps the modules of
one package in order too.
"""
import os
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from test_layers import PACKAGE, imports_of, modules  # noqa: E402


def module_name(path, package=PACKAGE):
    rel = osp.relpath(path, package)[:-3].split(os.sep)
    return tuple(rel[:-1]) if rel[-1] == '__init__' else tuple(rel)


def resolve(parts, package=PACKAGE):
    """The module (a tuple of names) an import of ``parts`` reads, or None for a name
    that is not a module of the package (``from .x import function`` -> module x)."""
    for cut in range(len(parts), 0, -1):
        base = osp.join(package, *parts[:cut])
        if osp.isfile(base + '.py'):
            return tuple(parts[:cut])
        if osp.isfile(osp.join(base, '__init__.py')):
            return tuple(parts[:cut])
    return None


def import_graph(package=PACKAGE):
    graph = {}
    for path in modules_of(package):
        source = module_name(path, package)
        edges = graph.setdefault(source, set())
        for _, target in imports_of_in(path, package):
            module = resolve(target, package)
            if module is not None and module != source:
                edges.add(module)
    return graph


def modules_of(package):
    if package == PACKAGE:
        return list(modules())
    return [osp.join(d, f) for d, _, fs in os.walk(package) for f in sorted(fs)
            if f.endswith('.py')]


def imports_of_in(path, package):
    import test_layers
    saved = test_layers.PACKAGE
    test_layers.PACKAGE = package
    try:
        return list(imports_of(path))
    finally:
        test_layers.PACKAGE = saved


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                if len(component) > 1:
                    found.append(sorted('.'.join(m) for m in component))
    return found


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, 'import circles: ' + '; '.join(' <-> '.join(c) for c in found)


@pytest.mark.parametrize('body_b', ['from .a import x\n', 'def f():\n    from .a import x\n'])
def test_the_check_finds_a_circle(tmp_path, body_b):
    """The checker itself, on a tiny package: a -> b -> a, also through a function."""
    pkg = tmp_path / 'pkg'
    (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'sub' / 'a.py').write_text('from .b import y\nx = 1\n')
    (pkg / 'sub' / 'b.py').write_text(body_b + 'y = 2\n')
    (pkg / 'sub' / 'c.py').write_text('from .a import x\n')
    assert cycles(import_graph(str(pkg))) == [['sub.a', 'sub.b']]


def test_the_check_passes_a_chain(tmp_path):
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from . import b\n')
    (pkg / 'b.py').write_text('from .c import z\n')
    (pkg / 'c.py').write_text('z = 0\n')
    assert cycles(import_graph(str(pkg))) == []
