"""Outputs that appear whole or not at all, and never replace anything without ``force``.

Every file or folder the project writes goes through here:

* :func:`atomic_open` (and :func:`atomic_write_text` / :func:`atomic_write_bytes`)
  writes a file under a hidden temporary name in the target's folder and publishes it
  when the ``with`` block ends without error;
* :class:`StagedDir` does the same for a whole output folder (one file per image plus an
  index): everything goes into a hidden sibling folder that :meth:`StagedDir.commit`
  renames to the target, with a hidden manifest of what it staged
  (:mod:`mmseg_ext.io.folder_manifest`).

Publishing is exclusive unless ``force`` is given: a file is published with a hard link
(which fails when the name exists) and a folder with a rename (which fails onto a
non-empty folder), so when two runs write the same new output, the second to finish
gets :class:`~mmseg_ext.utils.errors.OutputExistsError` instead of silently replacing
the first one's result. ``force`` replaces an existing folder only when everything in
it is listed, unchanged, in its manifest (a file the user added or edited there, a folder
without a manifest, or a symbolic link at the target is refused, named). Any exception, including the ``Interrupted`` that the tools raise
on SIGINT/SIGTERM, removes the temporary file or folder. A folder that cannot be written
(permissions, read-only disk, disk full) is an
:class:`~mmseg_ext.utils.errors.OutputError` naming the path.

Two rules keep the hidden names out of the user's way:

* a derived name never exceeds the file system's limit on one name (``NAME_MAX``,
  usually 255 bytes): :func:`hidden_name` shortens the visible part (and keeps a short
  hash of the whole name and a random tail), so any output name that is valid itself can
  be staged;
* an error met while writing a staged file names the user's output, never the hidden
  path: :func:`output_error` maps staging paths back (:func:`user_path`), and an
  ``OSError`` of writing inside a :class:`StagedDir` block or a :func:`writing` block
  (``ENOSPC``, ``EDQUOT``, ``EFBIG`` under ``ulimit -f``, or any error that names a file
  in the staging folder) becomes an :class:`~mmseg_ext.utils.errors.OutputError` naming
  the output. Python ignores ``SIGXFSZ``, so a write past ``ulimit -f`` is such an
  error, not the end of the process.

Publishing is **signal-atomic**: the few renames that replace an earlier output
(:meth:`StagedDir.commit`, :func:`publish_file`, the publish loop of
:func:`atomic_write_files`, :func:`replace_folders`) run with SIGINT/SIGTERM blocked
(:func:`signals_deferred`); a signal that arrives meanwhile is delivered when the
commit is complete and consistent (the new output in place and the earlier one gone,
or the earlier one restored), so an interruption never hides the earlier output in a
hidden ``.<name>.old-*`` folder. An error in the middle restores what was there.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import os.path as osp
import shutil
import signal
import tempfile
import threading
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..utils.errors import OutputError, OutputExistsError
from .folder_manifest import MANIFEST, check_replaceable_folder, write_folder_manifest

#: the signals a commit defers (the ones the tools turn into ``Interrupted``)
DEFERRED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Defer SIGINT and SIGTERM to the end of the block (main thread only): a signal
    sent meanwhile is delivered when the block ends, after its last statement.

    For the critical section of a commit (renames that replace an earlier output): the
    handler's ``Interrupted`` is raised only once the commit has completed or been
    rolled back. Two layers: the signals are blocked in this thread
    (``signal.pthread_sigmask``), and since the kernel may hand a process-directed
    signal to another thread (torch's, tqdm's), the Python handlers are swapped for
    one that only records the signal; on exit the mask and handlers are restored and
    a recorded signal is raised again (``signal.raise_signal``). Re-entrant: a nested
    block leaves the deferral to the outer one. Elsewhere than in the main thread
    (where Python runs the handlers) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread() or _DEFERRING:
        yield
        return
    pending: List[int] = []

    def record(signum: int, frame) -> None:  # noqa: ARG001
        if signum not in pending:
            pending.append(signum)

    previous = {}
    for signum in DEFERRED_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python, cannot be restored
            previous[signum] = signal.signal(signum, record)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    _DEFERRING.append(1)
    try:
        yield
    finally:
        _DEFERRING.pop()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a blocked one: recorded now
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)


#: non-empty while a :func:`signals_deferred` block runs (nested blocks defer nothing)
_DEFERRING: List[int] = []


def check_new_output(path: str, force: bool) -> None:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``force`` is False."""
    if osp.lexists(path) and not force:
        raise OutputExistsError(path)


#: write errors that come from the disk or the process's limits, whatever the file
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

#: hidden staging folder (absolute) -> the output folder it becomes
_STAGING: Dict[str, str] = {}

#: work directories whose lock this process holds (:class:`~.ownership.WorkDirLock`):
#: only their tool writes the output folders their manifest lists
HELD_WORK_DIRS: set = set()


def _owning_work_dir(path: str) -> Optional[str]:
    """The closest folder above ``path`` whose manifest lists ``path`` (a work dir of
    a multi-stage tool: cv's ``oof_probs``, a fold's ``val_probs``), or None."""
    from ..utils.readers import read_json
    full = osp.abspath(path)
    folder = osp.dirname(full)
    while True:
        record = osp.join(folder, MANIFEST)
        if osp.isfile(record) and not osp.islink(record):
            try:
                entries = read_json(record, 'manifest').get('entries') or {}
            except (OSError, ValueError, AttributeError):
                entries = {}
            if osp.relpath(full, folder).replace(os.sep, '/') in entries:
                return folder
        parent = osp.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def user_path(path: str) -> str:
    """``path`` as the user knows it: a path inside a hidden staging folder
    (:class:`StagedDir`, :func:`staging_folder`) becomes the same path inside the
    output it will be published as; any other path is returned unchanged."""
    full = osp.abspath(path)
    for tmp, final in _STAGING.items():
        if full == tmp:
            return final
        if full.startswith(tmp + os.sep):
            return osp.join(final, full[len(tmp) + 1:])
    return path


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return 'read-only file system'
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 'no space left on the device'
    if exc.errno == errno.EFBIG:
        return ('file too large: over the file size limit of this process (ulimit -f) '
                'or of the file system')
    if exc.errno is None and not exc.strerror:  # numpy's short write, a failed encoder
        return f'write failed ({exc})' if str(exc) else 'write failed'
    return exc.strerror or str(exc)


def output_error(path: str, exc: OSError) -> OutputError:
    """One-line :class:`OutputError` for an ``OSError`` met while writing ``path``
    (a staging path is named as the output it becomes, :func:`user_path`)."""
    return OutputError(f'{user_path(path)}: cannot write the output ({_reason(exc)})')


def _inside(path: Optional[str], folder: str) -> bool:
    if not path or not isinstance(path, str):
        return False
    full = osp.abspath(path)
    return full == folder or full.startswith(folder + os.sep)


def is_write_error(exc: BaseException, folder: Optional[str] = None) -> bool:
    """Whether ``exc`` is an ``OSError`` of writing (not yet an :class:`OutputError`):
    it names a file inside ``folder`` (the folder being written), or its errno is one
    only writes give (:data:`WRITE_ERRNOS`)."""
    if not isinstance(exc, OSError) or isinstance(exc, OutputError):
        return False
    if folder is not None and (_inside(exc.filename, folder) or
                               _inside(exc.filename2, folder)):
        return True
    return exc.errno in WRITE_ERRNOS


@contextlib.contextmanager
def writing(path: str, folder: Optional[str] = None) -> Iterator[None]:
    """Turn a write error in the block into an :class:`OutputError` naming ``path``.

    For code that writes an output with a library call that raises a bare ``OSError``
    (``np.save``, ``json.dump`` into a file, an image encoder): the error names the
    user's output, not the hidden file written. ``folder`` is where the block writes
    (errors naming files there are write errors whatever their errno; default: the
    folder of ``path``).
    """
    try:
        yield
    except OSError as exc:
        where = osp.abspath(folder or osp.dirname(osp.abspath(path)))
        if not is_write_error(exc, where):
            raise
        named = exc.filename if _inside(exc.filename, where) else path
        raise output_error(named, exc) from None


def make_parent(path: str) -> str:
    """Create the folder of ``path`` when missing; return it (as an absolute path)."""
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc) from None
    return folder


_UMASK: Optional[int] = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:  # reading the umask means setting it: once, then cached
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``0o644`` under
    umask 022). :func:`tempfile.mkstemp` creates files with ``0o600`` whatever the
    umask; published outputs get this mode instead, as if written directly."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``os.makedirs`` gives a new folder under the umask (``0o755``);
    :func:`tempfile.mkdtemp` gives ``0o700``."""
    return 0o777 & ~_umask()


def existing_output(path: str) -> str:
    """What is at ``path``, for an error about publishing there."""
    if osp.islink(path) and not osp.exists(path):
        return f'is a broken symbolic link (to {os.readlink(path)}); remove it first'
    if osp.isdir(path):
        return 'is a folder, expected a file name'
    return 'appeared while this run was writing it'


def name_max(folder: str) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes (255 where
    it does not say)."""
    try:
        return int(os.pathconf(folder, 'PC_NAME_MAX'))
    except (OSError, ValueError, AttributeError):
        return 255


def hidden_name(base: str, tail: str, folder: str) -> str:
    """``.<base><tail>`` made to fit the file system's limit on one name.

    When it would be too long, the visible part ``base`` is cut (at a character
    boundary) and a short hash of the whole ``base`` keeps different long names apart:
    ``.<start of base>~<8 hex><tail>``; ``tail`` (the tag and random part) is kept.
    ``tail`` must itself be short (a few tens of bytes).
    """
    limit = name_max(folder)
    name = f'.{base}{tail}'
    if len(name.encode('utf-8', 'surrogateescape')) <= limit:
        return name
    digest = hashlib.sha1(base.encode('utf-8', 'surrogateescape')).hexdigest()[:8]
    room = limit - len(f'.~{digest}{tail}'.encode('utf-8', 'surrogateescape'))
    cut = base.encode('utf-8', 'surrogateescape')[:max(room, 0)]
    visible = cut.decode('utf-8', 'ignore')
    return f'.{visible}~{digest}{tail}'


#: characters :mod:`tempfile` adds for the random part of a name
_RANDOM_CHARS = 8


def _temp_prefix(base: str, tag: str, suffix: str, folder: str) -> str:
    """The ``prefix`` to give :mod:`tempfile` for ``.<base>.<tag><random><suffix>`` so
    that the whole name fits (:func:`hidden_name`)."""
    tail = f'.{tag}' + 'X' * _RANDOM_CHARS + suffix
    return hidden_name(base, tail, folder)[:-(_RANDOM_CHARS + len(suffix))]


def staging_folder(path: str, tag: str = 'partial-') -> str:
    """Make a new hidden sibling folder of ``path`` (``.<name>.<tag><random>``, with the
    mode of a plain new folder) and register it as staging ``path``, spelled as given
    (:func:`user_path`); :func:`release_staging` forgets it.

    Raises:
        OSError: the folder cannot be made.
    """
    folder, base = osp.split(osp.abspath(path))
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(base, tag, '', folder), dir=folder)
    try:
        os.chmod(tmp, folder_mode())  # published as `path`: the mode of a plain folder
    except OSError:  # a file system without modes: keep what it gives
        pass
    _STAGING[tmp] = path
    return tmp


def release_staging(tmp: str) -> None:
    """Forget the staging folder ``tmp`` (:func:`staging_folder`)."""
    _STAGING.pop(osp.abspath(tmp), None)


def publish_file(tmp: str, path: str, force: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``force`` never replace a file.

    Raises:
        OutputExistsError: ``path`` exists (it appeared while ``tmp`` was written) and
            ``force`` is False; ``tmp`` is left for the caller to remove.
        OutputError: the rename or link failed (named as ``path``, not ``tmp``).
    """
    try:
        with signals_deferred():  # the link-then-unlink (or claim-then-rename) pair
            _publish_file(tmp, path, force)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise output_error(path, exc) from None


def _publish_file(tmp: str, path: str, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(path, existing_output(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # a file system without hard links: claim the name first, then rename onto it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputExistsError(path, existing_output(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def temp_beside(path: str, suffix: str = '.tmp') -> Tuple[int, str]:
    """A new hidden temporary file in ``path``'s folder (created when missing):
    ``(open file descriptor, its path)``, with the mode of a plain new file
    (:func:`file_mode`), so the published output is as readable as any other."""
    folder = make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=_temp_prefix(osp.basename(path), '', suffix, folder), suffix=suffix,
            dir=folder)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        os.fchmod(fd, file_mode())
    except OSError:  # a file system without modes: keep what it gives
        pass
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', force: bool = False,
                **open_kwargs) -> Iterator:
    """Open a temporary file that becomes ``path`` when the block succeeds.

    Args:
        path: final file name; its folder is created when missing.
        mode: ``'w'`` (text) or ``'wb'``.
        force: replace an existing ``path``; otherwise an existing ``path`` (before or
            after the block) is an :class:`OutputExistsError`.
        open_kwargs: passed to :func:`open` (``newline``, ``encoding``...).
    """
    check_new_output(path, force)
    if osp.isdir(path):
        raise OutputError(f'{path}: is a folder, expected a file name')
    fd, tmp = temp_beside(path)
    try:
        with open(fd, mode, **open_kwargs) as f:
            yield f
        publish_file(tmp, path, force)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OutputError):
            raise
        folder = osp.dirname(osp.abspath(path))
        if exc.filename is not None and not is_write_error(exc, folder):
            raise  # about another file (an input read inside the block): not ours
        raise output_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str, force: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'w', force=force, encoding='utf-8', newline='') as f:
        f.write(text)


def atomic_write_bytes(path: str, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'wb', force=force) as f:
        f.write(data)


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


def replace_folders(pairs: Sequence[Tuple[str, str]],
                    after_publish: Optional[Callable[[], None]] = None) -> None:
    """Move each finished folder ``new`` to ``target`` (replacing a ``target`` folder or
    file), all or none, with SIGINT/SIGTERM deferred (:func:`signals_deferred`).

    The earlier ``target`` is renamed aside to a hidden ``.<name>.old-*`` sibling until
    every folder is in place and ``after_publish`` (still inside the commit) returned,
    then removed; on any error each earlier ``target`` is put back.

    Raises:
        OutputError: a rename failed (named as the target).
    """
    moved: List[Tuple[Optional[str], str, str]] = []  # (earlier aside, target, new)
    with signals_deferred():
        try:
            for new, target in pairs:
                aside = None
                if osp.lexists(target):
                    folder, base = osp.split(osp.abspath(target))
                    aside = tempfile.mkdtemp(prefix=_temp_prefix(base, 'old-', '', folder),
                                             dir=folder)
                    os.rmdir(aside)  # the name, free for the rename
                    try:
                        os.rename(target, aside)
                    except OSError as exc:
                        raise output_error(target, exc) from None
                moved.append((aside, target, new))
                try:
                    os.rename(new, target)
                except OSError as exc:
                    moved[-1] = (aside, target, '')
                    raise output_error(target, exc) from None
            if after_publish is not None:
                after_publish()
        except BaseException:
            for aside, target, new in reversed(moved):
                with contextlib.suppress(OSError):
                    if new:  # published: move it back to where it was built
                        os.rename(target, new)
                    if aside is not None:
                        os.rename(aside, target)
            raise
        for aside, _, _ in moved:
            if aside is not None:
                _remove_tree(aside)


def _remove_tree(path: str) -> None:
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


class StagedDir:
    """Build an output folder under a hidden temporary name; publish it whole.

    :meth:`commit` records what was staged in a hidden manifest inside the folder
    (:mod:`mmseg_ext.io.folder_manifest`: every file with its size and ``mtime_ns``), so a
    later ``force`` run can tell the tool's files from the user's.

    Args:
        path: the final folder.
        force: allow replacing an existing ``path``; it is replaced only when it is
            empty or everything in it is listed, unchanged, in its manifest of the same
            ``marker`` (:func:`~mmseg_ext.io.folder_manifest.check_replaceable_folder`):
            never a folder with a file the tool did not write or one edited since, nor
            a folder without a manifest (someone's, or an older version's output).
        marker: file name that identifies a folder this tool family wrote (the tools
            writing the same marker, such as inference and ensemble, may replace each
            other's folders).

    Use as a context manager: an exception removes the temporary folder; call
    :meth:`commit` at the end of the block to publish.

    Errors name the folder as given (``path``), not its absolute form.
    """

    def __init__(self, path: str, force: bool = False, marker: str = 'index.json'):
        self.path = osp.abspath(path)
        self.shown = path
        self.force = force
        self.marker = marker
        self.tool = f'mmseg_ext output folder ({marker})'
        self._check_target()
        make_parent(self.path)
        try:
            self.tmp = staging_folder(path, 'partial-')
        except OSError as exc:
            raise output_error(self.path, exc) from None
        self._made = {self.tmp}
        self.committed = False

    def _check_target(self) -> None:
        """Refuse an existing ``path`` this run may not replace (see the class doc).

        Raises:
            OutputError: ``path`` is a symbolic link or not a folder (with or without
                ``force``: never replaced), or, with ``force``, holds something that is
                not the tool's (named).
            OutputExistsError: a non-empty folder and no ``force``.
        """
        path, shown = self.path, self.shown
        if not osp.lexists(path):
            return
        owner = _owning_work_dir(path)
        if owner is not None and osp.abspath(owner) not in HELD_WORK_DIRS:
            raise OutputError(f'{shown}: an output of the multi-stage run in {owner} (its '
                              'manifest lists it); only that run replaces it: write '
                              'elsewhere, or run that tool again')
        if osp.islink(path):
            raise OutputError(f'{shown}: is a symbolic link (to {os.readlink(path)}), not a '
                              'folder; an output folder is not written through a link: '
                              'remove the link or choose another output folder')
        if not osp.isdir(path):
            raise OutputError(f'{shown}: exists and is not a folder; not replacing it: '
                              'remove it or choose another output folder')
        try:
            if not os.listdir(path):
                return
            if not self.force:
                raise OutputExistsError(shown)
            check_replaceable_folder(path, shown, self.tool, self.marker)
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f'{user_path(exc.filename or path)}: cannot be read to tell '
                              f'whether it is this tool\'s ({_reason(exc)})') from None

    def file(self, relpath: str) -> str:
        """Path inside the temporary folder for ``relpath`` (parent folders created).

        Raises:
            DataError: ``relpath`` is empty, absolute or climbs out with ``..`` (it comes
                from data: an image key, a ``file_name``), so nothing is written outside
                the output folder.
        """
        from .paths import data_relpath
        full = osp.join(self.tmp, data_relpath(relpath, f'{self.path}: output name'))
        folder = osp.dirname(full)
        if folder not in self._made:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise output_error(folder, exc) from None
            self._made.add(folder)
        return full

    def commit(self) -> str:
        """Rename the temporary folder to the final name; return the final path.

        The manifest of what was staged is written first (the folder's last file).
        With ``force`` an existing folder (checked again: entirely the tool's) is renamed
        aside (``.<name>.old-*``), the new
        one renamed in, and the earlier one removed, all with SIGINT/SIGTERM deferred
        (:func:`signals_deferred`): a signal meanwhile is delivered once the new folder
        is in place and the earlier one gone. On an error the earlier folder is put
        back. When another run publishes the same folder in between (two ``force``
        runs at once), this run leaves the other's output in place, removes its own
        copies and raises :class:`OutputExistsError`.

        Raises:
            OutputExistsError: without ``force``, a non-empty folder appeared at the
                final name while this one was built; with it, another run published
                the folder during this commit.
        """
        self._record()
        self._check_target()
        with signals_deferred():
            old = self._move_aside() if self.force else None
            if old is not None:  # checked again once no one else can write into it
                try:
                    check_replaceable_folder(old, self.shown, self.tool, self.marker)
                except OutputError as exc:
                    self._put_back(old)
                    raise OutputError(str(exc).replace(old, self.shown)) from None
            try:
                os.rename(self.tmp, self.path)  # fails onto a non-empty folder
            except OSError as exc:
                raced = exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR)
                if old is not None:
                    self._put_back(old)
                if raced:
                    raise OutputExistsError(
                        self.shown, 'appeared while this run was writing it') from None
                raise output_error(self.path, exc) from None
            release_staging(self.tmp)
            self.committed = True
            if old is not None:
                _remove_tree(old)
        return self.path

    def _record(self) -> None:
        """Write the manifest of everything staged (the last file of the folder).

        Raises:
            OutputError: it cannot be written (named inside the output).
        """
        try:
            write_folder_manifest(self.tmp, self.tool)
        except OSError as exc:
            raise output_error(osp.join(self.tmp, MANIFEST), exc) from None

    def _move_aside(self) -> Optional[str]:
        """Rename the existing final folder to a new hidden ``.<name>.old-*`` sibling;
        None when there is none (also when another run moved it away just now)."""
        if not osp.lexists(self.path):
            return None
        folder = osp.dirname(self.path)
        try:
            old = tempfile.mkdtemp(prefix=_temp_prefix(
                osp.basename(self.path), 'old-', '', folder), dir=folder)
        except OSError as exc:
            raise output_error(self.path, exc) from None
        try:
            os.rename(self.path, old)  # replaces the empty `old`
        except FileNotFoundError:  # another run moved it aside first
            with contextlib.suppress(OSError):
                os.rmdir(old)
            return None
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(old)
            raise output_error(self.path, exc) from None
        return old

    def _put_back(self, old: str) -> None:
        """Restore the earlier folder ``old`` after a failed publish; when another run
        has published the folder meanwhile (its output replaces the earlier one, as
        with ``force``), remove ``old`` instead of leaving a hidden copy behind."""
        try:
            os.rename(old, self.path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and osp.isdir(self.path):
                _remove_tree(old)  # another run's complete output is in place

    def abort(self) -> None:
        """Remove the temporary folder (nothing is published)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        release_staging(self.tmp)

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Remove what was staged unless committed; a write error of the block (a file
        in the staging folder, no space, ``EFBIG``, a short write) is raised as an
        :class:`OutputError` naming the output, not the hidden folder."""
        if self.committed:
            return
        error = None
        if exc is not None and is_write_error(exc, self.tmp):
            named = exc.filename if _inside(exc.filename, self.tmp) else self.tmp
            error = output_error(named, exc)  # mapped while the folder is registered
        self.abort()
        if error is not None:
            raise error from None
