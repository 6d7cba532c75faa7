"""Several files that belong together, published as one commit: all or none.

:func:`atomic_write_files` writes every file under a hidden temporary name first and
publishes them only once all are written; publishing is signal-atomic
(:func:`~mmseg_ext.io.deferred_signals.signals_deferred`) and all-or-nothing: the earlier
versions of replaced files (and the files to remove in the same commit) are kept aside
under hidden ``.<name>.old-*`` names until every file is published, and put back on an
error.
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..utils.errors import OutputError
from .atomic import check_new_output, publish_file, temp_beside
from .deferred_signals import signals_deferred
from .output_errors import output_error
from .staging import hidden_name


def atomic_write_files(texts: Dict[str, str], force: bool = False,
                       remove: Sequence[str] = (),
                       after_publish: Optional[Callable[[], None]] = None) -> List[str]:
    """Write several text files (UTF-8) that belong together, all or none.

    Every file is checked first (none is written when one exists and ``force`` is
    off), then written under a temporary name; only when all are written are they
    published, so an error or an interruption while writing leaves no file behind.
    Publishing (:func:`_publish_together`) is signal-atomic and all-or-nothing: the
    earlier versions of replaced files (and the files in ``remove``) are kept aside
    under hidden names until every file is published, and put back on an error.

    Args:
        texts: path -> text, in publishing order.
        force: replace existing files.
        remove: files to remove in the same commit (an earlier run's stale outputs).
        after_publish: called once all are published, still inside the commit (e.g. to
            save a manifest of them); an error there rolls everything back.

    Returns:
        The paths, in the order given.
    """
    for path in texts:
        check_new_output(path, force)
    staged: List[Tuple[str, str]] = []
    current = ''  # the file being written or published, named in an error
    try:
        for current, text in texts.items():
            fd, tmp = temp_beside(current)
            staged.append((tmp, current))
            with open(fd, 'w', encoding='utf-8', newline='') as f:
                f.write(text)
        current = next(iter(texts), '')
        _publish_together(staged, force, list(remove), after_publish)
        staged = []
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise output_error(exc.filename if exc.filename in texts else current,
                           exc) from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return list(texts)


def _set_aside(path: str) -> Optional[str]:
    """Keep the file at ``path`` under a new hidden name beside it (a hard link, so
    ``path`` itself stays in place; a rename where links are not supported); None when
    there is no file."""
    if not osp.lexists(path) or (osp.isdir(path) and not osp.islink(path)):
        return None
    folder, base = osp.split(osp.abspath(path))
    for _ in range(100):
        aside = osp.join(folder, hidden_name(base, '.old-' + os.urandom(4).hex(), folder))
        try:
            os.link(path, aside, follow_symlinks=False)
            return aside
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                                 errno.EMLINK):
                raise
        if not osp.lexists(aside):
            os.rename(path, aside)
            return aside
    raise FileExistsError(errno.EEXIST, 'no free hidden name', path)


def _publish_together(staged: List[Tuple[str, str]], force: bool, remove: List[str],
                      after_publish: Optional[Callable[[], None]]) -> None:
    """Publish ``(tmp, path)`` pairs and remove ``remove`` as one commit, with
    SIGINT/SIGTERM deferred; on an error put every earlier file back and raise.
    The published temporaries are taken out of ``staged``."""
    kept: List[Tuple[Optional[str], str]] = []  # (earlier version aside or None, path)
    done: List[str] = []
    with signals_deferred():
        try:
            for path in remove:
                aside = _set_aside(path)
                kept.append((aside, path))
                if aside is not None and osp.lexists(path):
                    os.remove(path)
            while staged:
                tmp, path = staged[0]
                kept.append((_set_aside(path) if force else None, path))
                done.append(path)
                publish_file(tmp, path, force)
                staged.pop(0)
            if after_publish is not None:
                after_publish()
        except BaseException:
            for aside, path in reversed(kept):
                with contextlib.suppress(OSError):
                    if aside is not None:
                        _restore(aside, path)
                    elif path in done and not staged_has(staged, path):
                        os.remove(path)
            raise
        for aside, _ in kept:
            if aside is not None:
                with contextlib.suppress(OSError):
                    os.remove(aside)


def _restore(aside: str, path: str) -> None:
    """Put the earlier file ``aside`` back at ``path`` (a rename between two links of
    one file does nothing, so a link of the file still in place is just removed)."""
    if osp.lexists(path) and _same_file(aside, path):
        os.remove(aside)
    else:
        os.replace(aside, path)


def _same_file(a: str, b: str) -> bool:
    sa, sb = os.lstat(a), os.lstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def staged_has(staged: List[Tuple[str, str]], path: str) -> bool:
    """Whether ``path`` is still waiting (not published) in ``staged``."""
    return any(p == path for _, p in staged)

