"""What a multi-stage tool owns in its work directory, and who is using it.

A tool that writes many outputs into one work directory and replaces them on request
(``tools/cv.py``, ``tools/self_train.py``) deletes or replaces only what it recorded as
its own:

* the work directory holds a **manifest** (:data:`MANIFEST`, JSON) listing every file
  and folder the tool created there, each file with the identity it had when written
  (size and ``st_mtime_ns``). The manifest is rewritten atomically after each stage, so
  it never lists less than what the finished stages wrote;
* a folder that exists with content but without a manifest, or with another tool's
  manifest, is not the tool's: it is refused (with and without ``force``);
* ``force`` removes the listed paths whose identity still matches. A listed file that
  changed since (the user replaced it under the same name) is not the tool's any more:
  nothing is removed and the error names it. Files the tool did not list (a user's file
  dropped into the work directory) are kept;
* a path is replaced by a stage only when it is absent or listed and unchanged; a
  stage that writes in place in its folder (training: mmengine writes
  ``last_checkpoint`` and the config dump in place) starts only when everything
  already there is listed, unchanged, a regular file or folder, and not hard-linked
  elsewhere (:meth:`Manifest.check_in_place`).

A work directory in use is **locked** (:class:`WorkDirLock`, ``fcntl.flock`` on
:data:`LOCK` inside it, non-blocking): a second run is refused with
``<work_dir>: in use by another run (pid N)``. The kernel drops the lock when its
process ends, however it ends, so the lock file a killed run leaves blocks nothing.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import os.path as osp
import stat
from typing import Dict, Iterator, List, Optional

from ..utils.errors import OutputError, OutputExistsError
from ..utils.readers import read_json
from .atomic import HELD_WORK_DIRS, atomic_write_files, atomic_write_text, output_error
from .paths import data_relpath

#: the ownership record in a work directory
MANIFEST = '.mmseg_ext_manifest.json'
#: the file a running tool holds an exclusive ``flock`` on
LOCK = '.mmseg_ext.lock'
#: names that do not make a folder "hold content" (the tool's own bookkeeping)
_BOOKKEEPING = (MANIFEST, LOCK)

Entry = Dict[str, object]


def file_identity(path: str) -> Entry:
    """``{'type': 'file', 'size': bytes, 'mtime_ns': int}`` of ``path`` (not followed
    through a symbolic link: a link is recorded as itself)."""
    st = os.lstat(path)
    return {'type': 'file', 'size': st.st_size, 'mtime_ns': st.st_mtime_ns}


def _walk(path: str) -> Iterator[str]:
    """``path`` and everything under it (folders before their content), links not
    followed."""
    yield path
    if osp.isdir(path) and not osp.islink(path):
        for dirpath, dirs, files in os.walk(path):
            for name in sorted(dirs):
                yield osp.join(dirpath, name)
            for name in sorted(files):
                yield osp.join(dirpath, name)


class WorkDirLock:
    """An exclusive, non-blocking lock of a work directory for one run.

    Use as a context manager (or :meth:`acquire` / :meth:`release`); the work directory
    is created when missing. SIGINT/SIGTERM unwind through ``__exit__``; a process
    killed outright loses its ``flock`` with its file descriptors.

    Raises:
        OutputError: another process holds the lock
            (``<work_dir>: in use by another run (pid N)``), or the lock file cannot
            be made.
    """

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK)
        self._fd: Optional[int] = None

    def acquire(self) -> WorkDirLock:
        import fcntl
        try:
            os.makedirs(self.work_dir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0)
                         | getattr(os, 'O_NONBLOCK', 0), 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symbolic link in its place: never followed
                raise OutputError(f'{self.path}: a symbolic link, not the lock file this '
                                  'tool makes; remove it and run again') from None
            raise output_error(self.work_dir, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)  # a FIFO, or a hard link to some other file: never written to
            raise OutputError(f'{self.path}: not the lock file this tool makes (a '
                              f'{"hard link" if stat.S_ISREG(st.st_mode) else "special file"}'
                              '); remove it and run again')
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f'{self.work_dir}: in use by another run'
                                  f'{f" (pid {holder})" if holder else ""}') from None
            raise output_error(self.work_dir, exc) from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        self._fd = fd
        HELD_WORK_DIRS.add(osp.abspath(self.work_dir))
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
            HELD_WORK_DIRS.discard(osp.abspath(self.work_dir))

    def __enter__(self) -> WorkDirLock:
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode('ascii').strip()
        if text.isdigit():
            return text
    return ''


class Manifest:
    """The paths a tool created in ``work_dir`` (relative, ``/``-separated) with their
    identities; see the module doc.

    Build it with :meth:`claim`, under the work directory's :class:`WorkDirLock`.
    """

    def __init__(self, work_dir: str, tool: str, entries: Optional[Dict[str, Entry]] = None):
        self.work_dir = work_dir
        self.tool = tool
        self.entries: Dict[str, Entry] = dict(entries or {})

    # ------------------------------------------------------------ reading and claiming
    @property
    def path(self) -> str:
        return osp.join(self.work_dir, MANIFEST)

    @classmethod
    def read(cls, work_dir: str) -> Optional[Manifest]:
        """The manifest in ``work_dir``; None when there is none.

        Raises:
            OutputError: a manifest that is not one (the folder cannot be proven ours).
        """
        path = osp.join(work_dir, MANIFEST)
        if not osp.lexists(path):
            return None
        if osp.islink(path):  # a record borrowed from another folder proves nothing here
            raise OutputError(f'{path}: a symbolic link, not a manifest this tool wrote; '
                              f'cannot tell what in {work_dir} is this tool\'s')
        try:
            data = read_json(path, 'manifest')
            tool, entries = data['tool'], data['entries']
            if not isinstance(tool, str) or not isinstance(entries, dict) or not all(
                    isinstance(e, dict) and e.get('type') in ('file', 'dir')
                    for e in entries.values()):
                raise TypeError
            for rel in entries:  # only plain relative paths inside the work dir
                if data_relpath(rel, f'{path}: entry') != rel or rel == MANIFEST:
                    raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputError(f'{path}: not a manifest of mmseg_ext (unreadable or '
                              f'malformed); cannot tell what in {work_dir} is this '
                              'tool\'s') from None
        return cls(work_dir, tool, entries)

    @classmethod
    def check_claimable(cls, work_dir: str, tool: str) -> Optional[Manifest]:
        """Refuse a work directory the tool did not make, before anything is written.

        Returns:
            Its manifest, or None for a new or empty folder.

        Raises:
            OutputError: ``work_dir`` is not a folder; holds content but no manifest;
                or holds another tool's manifest.
        """
        if not osp.lexists(work_dir):
            return None
        if not osp.isdir(work_dir):
            raise OutputError(f'{work_dir}: exists and is not a folder')
        manifest = cls.read(work_dir)
        if manifest is None:
            content = [n for n in os.listdir(work_dir) if n not in _BOOKKEEPING]
            if content:
                raise OutputError(
                    f'{work_dir}: holds files this tool did not write (no {MANIFEST}, '
                    f'e.g. {sorted(content)[0]}); refusing to use it as the work '
                    'directory: choose a new or empty folder')
            return None
        if manifest.tool != tool:
            raise OutputError(f'{work_dir}: is the work directory of {manifest.tool}, not '
                              f'of {tool}; choose another folder')
        return manifest

    @classmethod
    def claim(cls, work_dir: str, tool: str) -> Manifest:
        """:meth:`check_claimable`, then the manifest to record into (written at once
        for a new work directory)."""
        manifest = cls.check_claimable(work_dir, tool)
        if manifest is None:
            manifest = cls(work_dir, tool)
            manifest.save()
        return manifest

    def save(self) -> None:
        """Write the manifest (atomically: temp file, then rename)."""
        atomic_write_text(self.path, json.dumps(dict(tool=self.tool, entries=self.entries),
                                                indent=0, sort_keys=True) + '\n',
                          force=True)

    # --------------------------------------------------------------------- ownership
    def rel(self, path: str) -> str:
        rel = osp.relpath(osp.abspath(path), osp.abspath(self.work_dir))
        if rel == '.' or rel == '..' or rel.startswith('..' + os.sep):
            raise ValueError(f'{path} is not inside {self.work_dir}')  # a caller's bug
        return rel.replace(os.sep, '/')

    def _full(self, rel: str) -> str:
        return osp.join(self.work_dir, *rel.split('/'))

    def linked_parent(self, rel: str) -> Optional[str]:
        """The first folder between the work dir and ``rel`` that is now a symbolic
        link (a listed folder replaced by a link leads outside: never the tool's)."""
        parts = rel.split('/')[:-1]
        for i in range(1, len(parts) + 1):
            folder = self._full('/'.join(parts[:i]))
            if osp.islink(folder):
                return folder
        return None

    def owns(self, path: str) -> bool:
        """Whether ``path`` is listed and unchanged since (a folder: listed), with no
        folder on the way replaced by a symbolic link."""
        rel = self.rel(path)
        entry = self.entries.get(rel)
        if entry is None or not osp.lexists(path) or self.linked_parent(rel):
            return False
        if entry['type'] == 'dir':
            return osp.isdir(path) and not osp.islink(path)
        return (osp.islink(path) or not osp.isdir(path)) and file_identity(path) == entry

    def foreign(self, path: str) -> Optional[str]:
        """The first path at or under ``path`` that is not the tool's (unlisted, or
        changed since it was listed); None when everything there is."""
        if not osp.lexists(path):
            return None
        for item in _walk(path):
            if not self.owns(item):
                return item
        return None

    def check_replaceable(self, path: str) -> None:
        """Refuse to replace ``path`` (a file, or a folder and all it holds) unless it is
        absent or entirely the tool's.

        Raises:
            OutputError: naming the first file that is not the tool's.
        """
        other = self.foreign(path)
        if other is not None:
            raise OutputError(f'{other}: {self._why(other)}; not replacing it (move it '
                              'away, or use another work directory)')

    def in_place_problem(self, path: str, unlisted_only: bool = False) -> str:
        """Why a stage may not write in place at ``path`` (``''`` when it may): a
        special file (FIFO, socket, device: never opened), a path the tool did not list
        or that changed since, or a file hard-linked elsewhere (``st_nlink > 1``: a
        snapshot such as ``cp -al`` shares its bytes, and an in-place write would change
        the snapshot too).

        Args:
            unlisted_only: judge only what stays after ``force`` removed the tool's
                listed files (special and unlisted paths).
        """
        from ..utils.readers import file_kind
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return ''
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)
                or stat.S_ISLNK(st.st_mode)):
            return f'not a regular file ({file_kind(st.st_mode)})'
        if self.entries.get(self.rel(path)) is None:
            return 'was not written by this tool'
        if unlisted_only:
            return ''
        if not self.owns(path):
            return 'changed since this tool wrote it'
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            return (f'hard-linked elsewhere ({st.st_nlink} names: a copy such as '
                    '`cp -al` shares it, and writing in place would change that copy too)')
        return ''

    def check_in_place(self, path: str, unlisted_only: bool = False) -> None:
        """Refuse to let a block write in place in the folder ``path`` (a training
        stage: mmengine writes ``last_checkpoint``, the config dump and the logs in
        place) unless everything already there is the tool's, unchanged and not shared
        with a hard link (:meth:`in_place_problem`). The folder itself may be a new or
        empty one the user made.

        Raises:
            OutputError: naming the first path that is not the tool's.
        """
        if not osp.lexists(path):
            return
        for item in _walk(path):
            if item == path and osp.isdir(path) and not osp.islink(path) \
                    and self.linked_parent(self.rel(path)) is None:
                continue
            problem = self.in_place_problem(item, unlisted_only)
            if problem:
                raise OutputError(f'{item}: {problem}; not writing over it (move it away, '
                                  'or use another work directory)')

    def _why(self, path: str) -> str:
        if self.entries.get(self.rel(path)) is None:
            return 'was not written by this tool'
        return 'changed since this tool wrote it'

    def record(self, path: str, save: bool = True) -> None:
        """List ``path`` and everything under it as the tool's, with their identities
        now."""
        for item in _walk(path):
            if osp.isdir(item) and not osp.islink(item):
                self.entries[self.rel(item)] = {'type': 'dir'}
            elif osp.lexists(item):
                self.entries[self.rel(item)] = file_identity(item)
        for parent in self._parents(path):
            self.entries.setdefault(parent, {'type': 'dir'})
        if save:
            self.save()

    def _parents(self, path: str) -> List[str]:
        parts = self.rel(path).split('/')[:-1]
        return ['/'.join(parts[:i + 1]) for i in range(len(parts))]

    @contextlib.contextmanager
    def recording(self, path: str, replace: bool = False) -> Iterator[None]:
        """List what the block creates at or under ``path`` (also when it fails or is
        interrupted): new paths, and listed files it changed. Paths that were there
        before, unlisted, stay unlisted (not the tool's).

        Args:
            replace: the block may replace ``path`` whole (a published folder or file):
                refused first unless everything there is the tool's
                (:meth:`check_replaceable`). Otherwise the block writes in place in the
                folder ``path`` (a training stage): refused first unless everything
                already there is the tool's, unchanged and not hard-linked elsewhere
                (:meth:`check_in_place`).

        Raises:
            OutputError: naming the first path in the way that is not the tool's.
        """
        if replace:
            self.check_replaceable(path)
        else:
            self.check_in_place(path)
        before = {item: self.entries.get(self.rel(item)) is not None
                  for item in _walk(path)} if osp.lexists(path) else {}
        try:
            yield
        finally:
            for item in (_walk(path) if osp.lexists(path) else ()):
                if before.get(item, True):  # new, or listed before
                    if osp.isdir(item) and not osp.islink(item):
                        self.entries[self.rel(item)] = {'type': 'dir'}
                    else:
                        self.entries[self.rel(item)] = file_identity(item)
            if osp.lexists(path):
                for parent in self._parents(path):
                    self.entries.setdefault(parent, {'type': 'dir'})
            for rel in [r for r in self.entries if self._under(r, path)]:
                if not osp.lexists(self._full(rel)):
                    del self.entries[rel]  # replaced or removed by the block
            self.save()

    def _under(self, rel: str, path: str) -> bool:
        top = self.rel(path)
        return rel == top or rel.startswith(top + '/')

    # --------------------------------------------------------------------- removing
    def remove_all(self) -> List[str]:
        """Remove every listed path (``force``): first check that every listed file
        that still exists is unchanged, then remove the files, then the listed folders
        left empty. Unlisted files (and the folders holding them) stay.

        Returns:
            The paths removed.

        Raises:
            OutputError: a listed file changed since it was written (nothing removed).
        """
        files = sorted((r for r, e in self.entries.items() if e['type'] == 'file'),
                       key=lambda r: (-r.count('/'), r))
        for rel in self.entries:
            link = self.linked_parent(rel) or (
                self._full(rel) if self.entries[rel]['type'] == 'dir' and
                osp.islink(self._full(rel)) else None)
            if link:
                raise OutputError(f'{link}: a symbolic link where this tool wrote a folder, '
                                  'so what it leads to is not the tool\'s to remove; '
                                  'remove the link and run again')
        for rel in files:
            full = self._full(rel)
            if osp.lexists(full) and (osp.isdir(full) and not osp.islink(full)
                                      or file_identity(full) != self.entries[rel]):
                raise OutputError(f'{full}: changed since this tool wrote it, so it is not '
                                  'the tool\'s to remove; move it away and run again')
        for rel, entry in self.entries.items():
            # a file of the user's inside a listed folder would stop the run later, after
            # the earlier outputs were gone: refuse now, with nothing removed
            full = self._full(rel)
            if entry['type'] == 'dir' and osp.isdir(full) and not osp.islink(full):
                other = self.foreign(full)
                if other is not None:
                    raise OutputError(f'{other}: {self._why(other)}, inside a folder of the '
                                      'earlier run; nothing was removed (move it away and '
                                      'run again)')
        removed = []
        for rel in files:
            full = self._full(rel)
            try:
                os.remove(full)
            except FileNotFoundError:
                pass  # deleted since it was listed: nothing to remove
            except OSError as exc:
                self.save_remaining()
                raise output_error(full, exc) from None
            else:
                removed.append(full)
            del self.entries[rel]
        dirs = sorted((r for r, e in self.entries.items() if e['type'] == 'dir'),
                      key=lambda r: (-r.count('/'), r))
        for rel in dirs:
            full = self._full(rel)
            try:
                os.rmdir(full)
                removed.append(full)
            except FileNotFoundError:
                pass
            except OSError:
                continue  # holds files that are not the tool's: the folder stays listed
            del self.entries[rel]
        self.save()
        return removed

    def refresh_logs(self) -> None:
        """Record again the identity of the listed log files (:data:`_LOG_SUFFIXES`)
        that are still plain files of this folder: the run itself appended to them after
        they were listed, and a later ``--force`` must not take that for a user's edit."""
        changed = False
        for rel, entry in self.entries.items():
            full = self._full(rel)
            if entry['type'] != 'file' or not rel.endswith(_LOG_SUFFIXES) or \
                    self.linked_parent(rel) or not osp.isfile(full) or osp.islink(full):
                continue
            now = file_identity(full)
            if now != entry and os.lstat(full).st_nlink == 1:
                self.entries[rel] = now
                changed = True
        if changed:
            self.save()

    def save_remaining(self) -> None:
        """Forget the listed paths that are gone, then save."""
        self.entries = {r: e for r, e in self.entries.items() if osp.lexists(self._full(r))}
        self.save()


@contextlib.contextmanager
def owned_work_dir(work_dir: str, tool: str) -> Iterator[Manifest]:
    """Lock ``work_dir`` for this run and give its manifest (see the module doc).

    The ownership check runs before the lock file is made, so a folder that is refused
    is left exactly as it was.

    Raises:
        OutputError: a folder the tool did not make, another tool's, or in use.
    """
    Manifest.check_claimable(work_dir, tool)
    with WorkDirLock(work_dir):
        manifest = Manifest.claim(work_dir, tool)
        try:
            yield manifest
        finally:
            manifest.refresh_logs()


#: files the tool goes on appending to after it listed them: mmengine's text log of a
#: stage, which also receives the run's later log lines (its logger stays "current")
_LOG_SUFFIXES = ('.log',)


# ------------------------------------------------------------------ owned output files
def write_owned_files(out_dir: str, tool: str, texts: Dict[str, str],
                      force: bool = False) -> List[str]:
    """Write a tool's set of text files into ``out_dir`` as one commit, recording them
    in the folder's manifest (see the module doc), for tools whose output is a set of
    files in a folder the user names (``tools/kfold.py``).

    * a folder with content but no manifest (or another tool's) is refused;
    * a file to write that exists and is not the tool's (unlisted, or changed since
      the tool wrote it) is refused, with and without ``force``;
    * the tool's files of an earlier run that this run does not write (another number
      of folds, another format) are stale: ``force`` removes them in the same commit
      (refused when changed since); without ``force`` any file of an earlier run, or
      any existing target, is an :class:`OutputExistsError`;
    * files and manifest are published together (:func:`atomic_write_files`): all or
      none, signal-atomic; files in ``out_dir`` the tool never listed are kept.

    Args:
        texts: path (inside ``out_dir``) -> UTF-8 text.

    Returns:
        The paths written, in the order given.

    Raises:
        OutputError: the folder or a file in the way is not the tool's.
        OutputExistsError: an earlier output is there and ``force`` is off.
    """
    existed = osp.isdir(out_dir)
    manifest = Manifest.check_claimable(out_dir, tool) or Manifest(out_dir, tool)
    for path in texts:
        if osp.lexists(path):
            manifest.check_replaceable(path)
    targets = {osp.abspath(p) for p in texts}
    stale = [manifest._full(rel) for rel, entry in sorted(manifest.entries.items())
             if entry['type'] == 'file' and osp.lexists(manifest._full(rel))
             and osp.abspath(manifest._full(rel)) not in targets]
    for path in stale:
        manifest.check_replaceable(path)
    if not force:
        earlier = [p for p in texts if osp.lexists(p)] + stale
        if earlier:
            raise OutputExistsError(earlier[0])

    def save_manifest() -> None:
        for path in stale:
            manifest.entries.pop(manifest.rel(path), None)
        for path in texts:
            manifest.record(path, save=False)
        manifest.save()

    try:
        return atomic_write_files(texts, force, remove=stale, after_publish=save_manifest)
    except BaseException:
        if not existed:  # made by this run: leave no empty folder
            with contextlib.suppress(OSError):
                os.rmdir(out_dir)
        raise


# ------------------------------------------------------------------ content identities
#: bytes hashed at each end of a file by :func:`fingerprint`
FINGERPRINT_BYTES = 1 << 20


def fingerprint(path: str) -> str:
    """``'<size>-<mtime_ns>-<sha256 of the first and last MiB, 16 hex>'`` of a file.

    Cheap for checkpoints of any size (2 MiB read), and it changes when the file is
    rewritten (mtime), replaced by another of the same size (the hashed ends hold the
    archive's directory and the first tensors), or copied over with its time kept.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        digest.update(f.read(FINGERPRINT_BYTES))
        if st.st_size > FINGERPRINT_BYTES:
            f.seek(max(st.st_size - FINGERPRINT_BYTES, FINGERPRINT_BYTES))
            digest.update(f.read())
    return f'{st.st_size}-{st.st_mtime_ns}-{digest.hexdigest()[:16]}'


def files_stamp(root: str, names: List[str]) -> str:
    """One hash (16 hex) of the names, sizes and modification times of the files
    ``names`` under ``root``: a file replaced in place under the same name changes it.

    Raises:
        OSError: a file is gone.
    """
    import hashlib
    digest = hashlib.sha256()
    for name in names:
        st = os.stat(osp.join(root, name))
        digest.update(f'{name}\t{st.st_size}\t{st.st_mtime_ns}\n'.encode())
    return digest.hexdigest()[:16]
