"""yapf's grammar cache, read and written by one process at a time.

mmengine's config module imports yapf, and yapf's first import on a machine parses two
grammar files and caches them as pickles in the user's cache folder
(``~/.cache/YAPF/<version>/``). yapf 0.43 renames its temporary file into place *before*
flushing it, so a second process starting at the same moment (the ranks of
``tools/dist_train.sh``, the tasks of ``tools/slurm_train.sh``) can read an empty pickle
and stop with ``EOFError: Ran out of input``; a process killed in that window leaves the
empty file behind, and every later import fails the same way.

:func:`grammar_cache_guard` wraps the import of ``yapf_third_party._ylib2to3.pygram`` (the
module that loads the grammars; :mod:`mmseg_ext.registration` puts it around that import):

* an exclusive ``flock`` on ``mmseg_ext-grammar.lock`` in yapf's cache folder, so that
  processes started through the plugin load or write the cache one after another (on one
  node, and across nodes sharing a home folder where the file system honours ``flock``);
* a cached grammar that cannot be read (empty or cut short) is written again, whole, from
  yapf's own grammar file, with one warning naming it: the content is what yapf itself
  would have written, nothing else in the folder is touched.

Where the cache folder cannot be made or locked (a read-only home), the import goes on
without the lock, as yapf itself does without its cache.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import warnings
from typing import Iterator, List

#: The module whose import loads yapf's grammars (and writes their cache).
GRAMMAR_MODULE = 'yapf_third_party._ylib2to3.pygram'

#: The lock file's name in yapf's cache folder.
LOCK_NAME = 'mmseg_ext-grammar.lock'

_GRAMMAR_FILES = ('Grammar.txt', 'PatternGrammar.txt')


def _grammar_texts() -> List[str]:
    """Paths of yapf's grammar files (the sources of the cached pickles)."""
    import yapf_third_party._ylib2to3 as package
    folder = os.path.dirname(package.__file__)
    return [os.path.join(folder, name) for name in _GRAMMAR_FILES]


def cached_grammar_path(grammar_text: str) -> str:
    """Where yapf caches the pickle of ``grammar_text`` (the path yapf itself computes)."""
    from yapf_third_party._ylib2to3.pgen2 import driver
    return driver._generate_pickle_name(grammar_text)


def _readable(path: str) -> bool:
    try:
        with open(path, 'rb') as f:
            return isinstance(pickle.load(f), dict)
    except FileNotFoundError:
        return True  # nothing cached yet: yapf writes it
    except Exception:  # noqa: BLE001 - any damage (empty, cut short, not a pickle)
        return False


def _rewrite(grammar_text: str, path: str) -> None:
    """Write the pickle of ``grammar_text`` to ``path`` whole (temporary file, then rename)."""
    from yapf_third_party._ylib2to3.pgen2 import pgen
    grammar = pgen.generate_grammar(grammar_text)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path), suffix='.tmp',
                               dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            pickle.dump(grammar.__dict__, f, pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def repair_damaged_cache() -> List[str]:
    """Rewrite each cached grammar pickle that cannot be read; return their paths."""
    repaired = []
    for text in _grammar_texts():
        path = cached_grammar_path(text)
        if not _readable(path):
            _rewrite(text, path)
            repaired.append(path)
    return repaired


@contextlib.contextmanager
def _cache_lock(folder: str) -> Iterator[bool]:
    """Hold an exclusive ``flock`` in ``folder``; yields whether it is held."""
    try:
        import fcntl
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing drops the lock


@contextlib.contextmanager
def grammar_cache_guard() -> Iterator[None]:
    """Around the import of :data:`GRAMMAR_MODULE`: the cache lock, then a damaged cache
    repaired (see the module's docstring)."""
    try:
        folder = os.path.dirname(cached_grammar_path(_grammar_texts()[0]))
    except Exception:  # noqa: BLE001 - another yapf layout: import as yapf would alone
        yield
        return
    with _cache_lock(folder) as locked:
        if locked:
            try:
                repaired = repair_damaged_cache()
            except OSError:
                repaired = []  # a read-only cache: yapf's own import says what it finds
            for path in repaired:
                warnings.warn(f'{path}: yapf\'s cached grammar was empty or damaged '
                              '(a process stopped while writing it); written again',
                              stacklevel=2)
        yield
