"""What a multi-stage tool owns in its work directory: its manifest (:class:`Manifest`).

A tool that writes many outputs into one work directory and replaces them on request
(``tools/cv.py``, ``tools/self_train.py``) deletes or replaces only what it recorded as
its own:

* the work directory holds a **manifest**
  (:data:`~mmseg_ext.io.manifest_records.MANIFEST`, JSON) listing every file
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

A work directory in use is locked (:class:`~mmseg_ext.io.work_dir_lock.WorkDirLock`):
:func:`owned_work_dir` takes the lock and gives the manifest. The identities of inputs a
stage depends on (a checkpoint, a list of files) are :func:`fingerprint` and
:func:`files_stamp`.
"""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import stat
from typing import Callable, Dict, Iterator, List, Optional

from ..utils.errors import MmsegExtError, OutputError, StageError
from ..utils.readers import read_json
from .atomic import atomic_write_text
from .folder_manifest import manifests_above, published_folder_of, read_folder_manifest
from .made_folders import first_missing, remove_empty_parents
from .manifest_records import MANIFEST, Entry, file_identity, manifest_fields
from .output_errors import output_error
from .paths import data_relpath
from .work_dir_lock import HELD_WORK_DIRS, LOCK, WorkDirLock

#: files that make a work dir worth keeping after a refusal (a training's checkpoints)
CHECKPOINT_SUFFIXES = ('.pth', '.pt', '.ckpt')

#: names that do not make a folder "hold content" (the tool's own bookkeeping)
_BOOKKEEPING = (MANIFEST, LOCK)


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


def published_listing(folder: str) -> Optional[set]:
    """The paths (relative, ``/``-separated) that the manifest of a published folder
    lists (:mod:`~mmseg_ext.io.folder_manifest`: a probability folder, a data set the
    generator wrote); None for a folder without one. A manifest that cannot be read
    lists nothing."""
    try:
        record = read_folder_manifest(folder, folder)
    except OutputError:
        return set()
    return None if record is None else set(record[1])


def foreign_place_problem(path: str, parents_only: bool = False) -> str:
    """Why a run may not make ``path`` its work dir (``''`` when it may): ``path`` is,
    or lies inside, a published output folder, or the work dir of a tool that this
    process does not hold (:data:`~mmseg_ext.io.work_dir_lock.HELD_WORK_DIRS`; a cv
    fold trained in another process inherits its parent's, :data:`HELD_ENV`). A run
    there would write over that tool's outputs. The folders above the path as given and
    above where it leads (a symbolic link into another tool's folder) are checked.

    Args:
        parents_only: check only the folders above ``path`` (a work dir that a tool
            claims itself is judged by its own manifest, :meth:`Manifest.check_claimable`).
    """
    held = {osp.realpath(p) for p in set(HELD_WORK_DIRS) | set(inherited_held_work_dirs())}
    for how, folder, data in manifests_above(path, include_self=not parents_only):
        if osp.realpath(folder) in held:
            continue
        where = '' if folder == osp.abspath(path) else f'{how} {folder}, '
        if data is None or not isinstance(data.get('tool'), str):
            return (f'{path}: {where}a folder whose {MANIFEST} cannot be read (a '
                    'tool\'s output); choose another work dir')
        tool = data['tool']
        if data.get('published'):
            return (f'{path}: {where}{published_folder_of(tool)} (a probability '
                    'folder, drawings, labels), not a work directory; choose another '
                    'folder')
        return (f'{path}: {where}the work dir of {tool}; a run there would write over '
                f'{tool}\'s outputs: choose another work dir')
    return ''


#: the environment variable through which a tool's subprocesses learn the work dirs
#: their parent holds (a JSON list)
HELD_ENV = 'MMSEG_EXT_HELD_WORK_DIRS'


def held_work_dirs_env() -> Dict[str, str]:
    """``{HELD_ENV: json list}`` of the work dirs this process holds, for the
    environment of a subprocess that trains in one of them (cv's folds)."""
    return {HELD_ENV: json.dumps(sorted(HELD_WORK_DIRS))}


def inherited_held_work_dirs() -> List[str]:
    """The work dirs the parent process holds (:data:`HELD_ENV`); none when unset or
    not a JSON list of paths."""
    try:
        value = json.loads(os.environ.get(HELD_ENV) or '[]')
    except ValueError:
        return []
    return [p for p in value if isinstance(p, str) and p] if isinstance(value, list) else []


def own_walk(path: str) -> Iterator[str]:
    """:func:`_walk`, except that inside a published folder (one holding its own
    manifest) only that manifest and what it lists are yielded: a file someone put in
    a tool's output folder is never taken for the tool's."""
    yield path
    if not osp.isdir(path) or osp.islink(path):
        return
    listing = published_listing(path)
    if listing is not None:
        yield osp.join(path, MANIFEST)
        for rel in sorted(listing):
            full = osp.join(path, *rel.split('/'))
            if osp.lexists(full):
                yield full
        return
    for name in sorted(os.listdir(path)):
        yield from own_walk(osp.join(path, name))


class Manifest:
    """The paths a tool created in ``work_dir`` (relative, ``/``-separated) with their
    identities; see the module doc.

    Build it with :meth:`claim`, under the work directory's
    :class:`~mmseg_ext.io.work_dir_lock.WorkDirLock`.
    """

    def __init__(self, work_dir: str, tool: str, entries: Optional[Dict[str, Entry]] = None):
        self.work_dir = work_dir
        self.tool = tool
        self.entries: Dict[str, Entry] = dict(entries or {})
        #: set once a stage of this run finished
        #: (:func:`~mmseg_ext.training.stages.mark_stage_done`): a run refused after it
        #: keeps what it wrote in a work dir it made (:func:`owned_work_dir`)
        self.precious = False
        #: the manifest of a published output folder (:mod:`~mmseg_ext.io.folder_manifest`),
        #: read here as a record; never a work dir to claim (:meth:`check_claimable`)
        self.published = False

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
            tool, entries = manifest_fields(data)
            for rel in entries:  # only plain relative paths inside the work dir
                if data_relpath(rel, f'{path}: entry') != rel or rel == MANIFEST:
                    raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputError(f'{path}: not a manifest of mmseg_ext (unreadable or '
                              f'malformed); cannot tell what in {work_dir} is this '
                              'tool\'s') from None
        manifest = cls(work_dir, tool, entries)
        manifest.published = bool(data.get('published'))
        return manifest

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
                    f'e.g. {sorted(content)[0]}); refusing to write into it: choose a '
                    'new or empty folder')
            return None
        if manifest.published:
            raise OutputError(f'{work_dir}: {published_folder_of(manifest.tool)} (a '
                              'probability folder, drawings, labels), '
                              'not a work directory; choose another folder')
        if manifest.tool != tool:
            raise OutputError(f'{work_dir}: holds the outputs of {manifest.tool}, not of '
                              f'{tool}; choose another folder')
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

    def full_path(self, rel: str) -> str:
        """The path in the work directory of the listed ``rel``."""
        return osp.join(self.work_dir, *rel.split('/'))

    def linked_parent(self, rel: str) -> Optional[str]:
        """The first folder between the work dir and ``rel`` that is now a symbolic
        link (a listed folder replaced by a link leads outside: never the tool's)."""
        parts = rel.split('/')[:-1]
        for i in range(1, len(parts) + 1):
            folder = self.full_path('/'.join(parts[:i]))
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

    def check_no_links(self) -> None:
        """Refuse a work directory where a folder the tool wrote is now a symbolic link
        (``rm -r fold0; ln -s ../A/fold0 fold0``): what the link leads to is another
        run's or the user's, never this tool's, whatever the records in it say.

        Raises:
            OutputError: naming the first such link.
        """
        for rel in sorted(self.entries):
            full = self.full_path(rel)
            link = self.linked_parent(rel) or (
                full if self.entries[rel]['type'] == 'dir' and osp.islink(full) else None)
            if link:
                raise OutputError(f'{link}: a symbolic link where this tool wrote a folder, '
                                  'so what it leads to is not the tool\'s; remove the link '
                                  '(or put the folder back) and run again')

    def check_replaceable(self, path: str) -> None:
        """Refuse to replace ``path`` (a file, or a folder and all it holds) unless it is
        absent or entirely the tool's.

        Raises:
            OutputError: naming the first file that is not the tool's.
        """
        other = self.foreign(path)
        if other is not None:
            raise OutputError(f'{other}: {self._why(other)}; not replacing it (move it '
                              'away, or use another folder)')

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
                                  'or use another folder)')

    def _why(self, path: str) -> str:
        if self.entries.get(self.rel(path)) is None:
            return 'was not written by this tool'
        return 'changed since this tool wrote it'

    def record(self, path: str, save: bool = True,
               accept: Optional[Callable[[str], bool]] = None) -> None:
        """List ``path`` and what under it is the tool's (:func:`own_walk`), with their
        identities now.

        Args:
            accept: ``accept(item path)``: whether an item is one the tool wrote (None:
                every item :func:`own_walk` yields).
        """
        for item in own_walk(path):
            if accept is not None and not accept(item):
                continue
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
    def recording(self, path: str, replace: bool = False,
                  accept: Optional[Callable[[str], bool]] = None) -> Iterator[None]:
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
            accept: ``accept(item path)``: whether a new path at or under ``path`` is
                one the block writes (a training stage: mmengine's checkpoints,
                pointer, config dump and log files). A new path it does not accept (a
                file someone put there meanwhile) stays unlisted: never the tool's to
                remove. None: every new path is the block's. Inside a published folder
                only what its own manifest lists is taken (:func:`own_walk`).

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
            for item in (own_walk(path) if osp.lexists(path) else ()):
                if before.get(item, True):  # new, or listed before
                    if item not in before and accept is not None and item != path and \
                            not accept(item):
                        continue  # new, but not a path the block writes
                    if osp.isdir(item) and not osp.islink(item):
                        self.entries[self.rel(item)] = {'type': 'dir'}
                    else:
                        self.entries[self.rel(item)] = file_identity(item)
            if osp.lexists(path):
                for parent in self._parents(path):
                    self.entries.setdefault(parent, {'type': 'dir'})
            for rel in [r for r in self.entries if self._under(r, path)]:
                if not osp.lexists(self.full_path(rel)):
                    del self.entries[rel]  # replaced or removed by the block
            self.save()

    def _under(self, rel: str, path: str) -> bool:
        top = self.rel(path)
        return rel == top or rel.startswith(top + '/')

    # --------------------------------------------------------------------- removing
    def remove_all(self, under: Optional[str] = None) -> List[str]:
        """Remove every listed path (``force``): first check that every listed file
        that still exists is unchanged, then remove the files, then the listed folders
        left empty. Unlisted files (and the folders holding them) stay.

        Args:
            under: only the listed paths at or under this relative path.

        Returns:
            The paths removed.

        Raises:
            OutputError: a listed file changed since it was written (nothing removed).
        """
        files = self.check_removable(under)
        removed = []
        for rel in files:
            full = self.full_path(rel)
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
        dirs = sorted((r for r, e in self._listed(under) if e['type'] == 'dir'),
                      key=lambda r: (-r.count('/'), r))
        for rel in dirs:
            full = self.full_path(rel)
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

    def _listed(self, under: Optional[str]) -> List[tuple]:
        """The listed ``(rel, entry)`` pairs at or under ``under`` (all: None)."""
        return [(r, e) for r, e in self.entries.items()
                if under is None or r == under or r.startswith(under + '/')]

    def check_removable(self, under: Optional[str] = None) -> List[str]:
        """Check that :meth:`remove_all` would remove every listed path and nothing
        else: no listed folder is now a link, every listed file that still exists is
        unchanged, and no listed folder holds a file that is not the tool's.

        Returns:
            The listed files, deepest first.

        Raises:
            OutputError: naming the first path in the way.
        """
        files = sorted((r for r, e in self._listed(under) if e['type'] == 'file'),
                       key=lambda r: (-r.count('/'), r))
        self.check_no_links()
        for rel in files:
            full = self.full_path(rel)
            if osp.lexists(full) and (osp.isdir(full) and not osp.islink(full)
                                      or file_identity(full) != self.entries[rel]):
                raise OutputError(f'{full}: changed since this tool wrote it, so it is not '
                                  'the tool\'s to remove; move it away and run again')
        for rel, entry in self._listed(under):
            # a file of the user's inside a listed folder would stop the run later, after
            # the earlier outputs were gone: refuse now, with nothing removed
            full = self.full_path(rel)
            if entry['type'] == 'dir' and osp.isdir(full) and not osp.islink(full):
                other = self.foreign(full)
                if other is not None:
                    raise OutputError(f'{other}: {self._why(other)}, inside a folder this '
                                      'tool wrote; nothing was removed (move it away and '
                                      'run again)')
        return files

    def refresh_logs(self) -> None:
        """Record again the identity of the listed log files (:data:`_LOG_SUFFIXES`)
        that are still plain files of this folder: the run itself appended to them after
        they were listed, and a later ``--force`` must not take that for a user's edit."""
        changed = False
        for rel, entry in self.entries.items():
            full = self.full_path(rel)
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
        self.entries = {r: e for r, e in self.entries.items() if osp.lexists(self.full_path(r))}
        self.save()


@contextlib.contextmanager
def owned_work_dir(work_dir: str, tool: str) -> Iterator[Manifest]:
    """Lock ``work_dir`` for this run and give its manifest (see the module doc).

    The ownership check runs before the lock file is made, so a folder that is refused
    is left exactly as it was.

    Raises:
        OutputError: a folder the tool did not make, another tool's, or in use.
    """
    problem = foreign_place_problem(work_dir, parents_only=True)
    if problem:  # inside a published folder or another tool's work dir
        raise OutputError(problem)
    Manifest.check_claimable(work_dir, tool)
    made = not osp.lexists(work_dir)
    made_top = first_missing(work_dir) if made else None
    try:
        with WorkDirLock(work_dir):
            manifest = Manifest.claim(work_dir, tool)
            try:
                manifest.check_no_links()  # before any record in a linked folder is read
                try:
                    yield manifest
                finally:
                    manifest.refresh_logs()
            except MmsegExtError as exc:
                if made and not manifest.precious and not isinstance(exc, StageError) \
                        and not _points_inside(exc, work_dir) and not any(
                            rel.endswith(CHECKPOINT_SUFFIXES) for rel in manifest.entries):
                    # refused before any stage finished or saved a checkpoint: what it
                    # wrote is not worth keeping, and a refusal leaves nothing behind
                    # (what the error points at, a failed stage's log or a rejection
                    # report, stays)
                    with contextlib.suppress(OutputError):
                        manifest.remove_all()
                raise
    except MmsegExtError:
        if made and _remove_if_bookkeeping_only(work_dir):
            remove_empty_parents(work_dir, made_top)
        raise


def _points_inside(exc: BaseException, work_dir: str) -> bool:
    """Whether the error's message names a path inside ``work_dir`` (the user is
    told to look there: it stays)."""
    text = str(exc)
    return any(f'{root.rstrip(os.sep)}{os.sep}' in text
               for root in {work_dir, osp.abspath(work_dir)})


def _remove_if_bookkeeping_only(work_dir: str) -> bool:
    """A work dir this run made and then refused to use: remove it when it holds
    nothing but the lock and the manifest, so a refusal leaves nothing behind.

    Returns:
        Whether it was removed.
    """
    try:
        names = set(os.listdir(work_dir))
    except OSError:
        return False
    if not names <= set(_BOOKKEEPING):
        return False
    try:
        for name in names:
            os.remove(osp.join(work_dir, name))
        os.rmdir(work_dir)
    except OSError:
        return False  # left as it is: the next run claims it again
    return True


#: files the tool goes on appending to after it listed them: mmengine's text log of a
#: stage, which also receives the run's later log lines (its logger stays "current")
_LOG_SUFFIXES = ('.log',)


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
    """One hash (16 hex) of the names and :func:`fingerprint` (size, modification time,
    the bytes of the first and last MiB) of the files ``names`` under ``root``: a file
    replaced in place under the same name changes it, also by another file of the same
    size copied over with its time kept (``cp -p``, ``rsync -a``). An image of up to
    2 MiB is hashed whole.

    Raises:
        OSError: a file is gone or cannot be read.
    """
    import hashlib
    digest = hashlib.sha256()
    for name in names:
        digest.update(f'{name}\t{fingerprint(osp.join(root, name))}\n'.encode())
    return digest.hexdigest()[:16]
