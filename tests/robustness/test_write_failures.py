"""The bad-input harness, class "write failures": every writer under ``ulimit -f``.

Each writer tool runs in its own process under a file size limit (``RLIMIT_FSIZE``, what
``ulimit -f`` sets; Python ignores ``SIGXFSZ``, so a write past the limit fails with
``OSError(EFBIG)``), with ``--force`` over a good output of an earlier run. It must:

* exit 1 with exactly one ``error:`` line, no traceback;
* name the output as the user gave it (not a hidden staging name);
* leave the earlier output byte for byte, every input untouched and no hidden
  temporary file or folder behind (a file-by-file snapshot before and after).

Also here: an image encoder that reports failure (``cv2.imwrite``/``cv2.imencode``
returning False) for the two tools that write images, and outputs whose names are as long
as the file system allows (a staging name derived from them must still fit).
"""
import json
import os
import os.path as osp
import resource
import subprocess
import sys

import numpy as np
import pytest

from robustness import test_bad_inputs as harness
from robustness.test_bad_inputs import CLASSES, REPO, SHAPES, run_main, snapshot

world = harness.world  # the harness's valid inputs (a module fixture)

#: the file size limit of the runs, in bytes: every output of the tools is larger (the
#: model tools get more: mmengine copies the config to a temporary file to read it)
LIMIT = 1
MODEL_LIMIT = 8 * 1024
#: what a hidden staging or temporary name contains (atomic.py, weights.py)
HIDDEN = ('.partial-', '.tmp', '.part', '.old-')


def run_limited(tool, argv, limit=LIMIT):
    """``(exit status, stderr lines)`` of ``python tools/<tool> argv`` with files limited
    to ``limit`` bytes."""
    def set_limit():
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    proc = subprocess.run([sys.executable, osp.join('tools', tool), *map(str, argv)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          preexec_fn=set_limit)
    return proc.returncode, proc.stderr.strip().splitlines()


def assert_one_line_naming(code, lines, output):
    errors = [line for line in lines if line.startswith('error:')]
    assert code == 1, (code, lines)
    assert len(errors) == 1 and not any('Traceback' in line for line in lines), lines
    assert output in errors[0], (output, errors[0])
    assert not any(tag in errors[0] for tag in HIDDEN), errors[0]


@pytest.fixture(scope='module')
def extra(world, tmp_path_factory):
    """Inputs the harness world lacks: ground truth for the tuner, a file to download."""
    root = tmp_path_factory.mktemp('extra')
    for key in ('ID1/a', 'ID1/b'):
        os.makedirs(root / 'gt' / 'ID1', exist_ok=True)
        np.save(root / 'gt' / f'{key}.npy', np.ones((2, 8, 8), np.uint8))
    blob = root / 'weights.bin'
    blob.write_bytes(os.urandom(4096))
    return dict(root=str(root), gt=str(root / 'gt'), blob=blob.as_uri())


# (id, tool, argv(world, extra, out) -> list, 'file' | 'dir' | 'pretrain')
WRITERS = [
    ('make_submission', 'make_submission.py', lambda w, x, out: [
        w['probs'], '--format', 'handbone', '--out', out, '--no-progress'], 'file'),
    ('ensemble', 'ensemble.py', lambda w, x, out: [
        w['probs'], w['probs2'], '--out-dir', out, '--no-progress'], 'dir'),
    ('pseudo_label', 'pseudo_label.py', lambda w, x, out: [
        w['probs'], '--out-dir', out, '--no-progress'], 'dir'),
    ('visualize', 'visualize.py', lambda w, x, out: [
        'overlay', w['probs'], '--img-dir', w['imgs'], '--out-dir', out, '--no-progress'],
     'dir'),
    ('coco_to_masks', 'coco_to_masks.py', lambda w, x, out: [
        w['coco'], out, '--no-progress'], 'dir'),
    ('kfold', 'kfold.py', lambda w, x, out: ['coco', w['coco'], '--out', out, '-k', '2'],
     'dir'),
    ('inference', 'inference.py', lambda w, x, out: [  # float16, stored: 40 KB a file
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images/val', '--out-dir', out,
        '--dtype', 'float16', '--compress-level', '0', '--out-size', '64,80',
        '--no-progress'], 'dir'),
    ('tune_thresholds', 'tune_thresholds.py', lambda w, x, out: [
        w['probs'], '--gt', x['gt'], '--out', out, '--no-progress'], 'file'),
    ('make_synthetic_handbone', 'make_synthetic_handbone.py', lambda w, x, out: [
        '--out', out, '--patients', '1', '--images-per-patient', '1', '--size', '16',
        '--test-patients', '1'], 'dir'),
    ('get_weights', 'get_weights.py', lambda w, x, out: [
        'hrnetv2-w18', '--url', x['blob'], '--out-dir', out, '--no-progress'], 'pretrain'),
]


def _earlier_output(tool, argv, kind, out):
    """A good output of an earlier run (the downloaded file: any bytes under its name)."""
    if kind == 'pretrain':  # published as get_weights publishes, with its ownership record
        from mmseg_ext.io.atomic import atomic_write_bytes
        from mmseg_ext.training.weights import OWNER
        atomic_write_bytes(osp.join(out, 'hrnetv2_w18-00eb2006.pth'), b'earlier download',
                           owner=OWNER)
        return
    status, lines = run_main(tool, argv)
    assert status == 0, lines


@pytest.mark.parametrize('writer', WRITERS, ids=[w[0] for w in WRITERS])
def test_a_write_past_the_file_size_limit_is_one_line_and_loses_nothing(
        writer, world, extra, tmp_path, fast_cpu):
    _, tool, argv, kind = writer
    out = str(tmp_path / ('out.json' if tool == 'tune_thresholds.py' else
                          'out.csv' if kind == 'file' else 'out'))
    _earlier_output(tool, argv(world, extra, out), kind, out)
    before = snapshot(world['root'], extra['root'], str(tmp_path))
    limit = MODEL_LIMIT if tool == 'inference.py' else LIMIT
    code, lines = run_limited(tool, [*argv(world, extra, out), '--force'], limit)
    assert_one_line_naming(code, lines, out)
    assert 'file too large' in lines[-1] or 'File too large' in lines[-1], lines
    assert snapshot(world['root'], extra['root'], str(tmp_path)) == before


def test_ulimit_in_bash_gives_the_same_line(world, tmp_path):
    """``bash -c 'ulimit -f N; python ...'``: the shell does not ignore SIGXFSZ, the
    interpreter does at start-up, so the write fails with EFBIG and is reported."""
    out = str(tmp_path / 's.csv')
    proc = subprocess.run(
        ['bash', '-c', f'ulimit -f 0; exec "{sys.executable}" tools/make_submission.py '
         f'"{world["probs"]}" --format handbone --out "{out}" --no-progress'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # not -SIGXFSZ (killed)
    assert_one_line_naming(proc.returncode, proc.stderr.splitlines(), out)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ encoder status
@pytest.fixture(scope='module')
def multiclass_probs(world, tmp_path_factory):
    from probs_helpers import write_prob_folder
    root = tmp_path_factory.mktemp('mc')
    probs = {f'ID1/{n}.png': (np.stack([np.full((8, 8), p), np.full((8, 8), 1 - p)]),
                              (8, 8)) for n, p in (('a', 0.95), ('b', 0.02))}
    return write_prob_folder(root / 'probs', probs, CLASSES, task='multi-class')


IMAGE_WRITERS = [
    ('visualize', 'visualize.py', lambda w, mc, out: [
        'overlay', w['probs'], '--img-dir', w['imgs'], '--out-dir', out, '--no-progress']),
    ('pseudo_label', 'pseudo_label.py', lambda w, mc, out: [
        mc, '--format', 'label-png', '--pixel-conf', '0.5', '--out-dir', out,
        '--no-progress']),
]


@pytest.mark.parametrize('writer', IMAGE_WRITERS, ids=[w[0] for w in IMAGE_WRITERS])
def test_an_image_encoder_that_fails_is_one_line(writer, world, multiclass_probs, tmp_path,
                                                  monkeypatch):
    """cv2 reports a failed write only by its return value (False): it is checked, the
    earlier drawings or labels stay, nothing half-written is published."""
    import cv2
    _, tool, argv = writer
    out = str(tmp_path / 'out')
    status, lines = run_main(tool, argv(world, multiclass_probs, out))
    assert status == 0, lines
    assert any(name.endswith('.png') for _, _, names in os.walk(out) for name in names)
    before = snapshot(world['root'], multiclass_probs, str(tmp_path))
    monkeypatch.setattr(cv2, 'imwrite', lambda *a, **k: False)
    monkeypatch.setattr(cv2, 'imencode', lambda *a, **k: (False, None))
    status, lines = run_main(tool, [*argv(world, multiclass_probs, out), '--force'])
    assert_one_line_naming(status, lines, out)
    assert 'cannot encode the image' in lines[-1], lines
    assert snapshot(world['root'], multiclass_probs, str(tmp_path)) == before


# ------------------------------------------------------------------ long names
def _longest_name(folder, ext):
    """A name of the most bytes ``folder``'s file system takes (minus a margin of 5),
    ending in ``ext``."""
    room = os.pathconf(folder, 'PC_NAME_MAX') - 5 - len(ext)
    return 'n' * room + ext


def test_an_output_file_with_a_250_character_name_is_written(world, tmp_path):
    """... with its ownership record (a derived name, kept within the limit), and
    replaced by --force."""
    name = _longest_name(str(tmp_path), '.csv')
    assert len(name) >= 250
    argv = [world['probs'], '--format', 'handbone', '--out', tmp_path / name,
            '--no-progress']
    status, lines = run_main('make_submission.py', argv)
    assert status == 0, lines
    status, lines = run_main('make_submission.py', [*argv, '--force'])
    assert status == 0, lines
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and names[1] == name, names
    assert names[0].startswith('.nnn') and names[0].endswith('.mmseg_ext_owner.json')
    assert json.load(open(tmp_path / names[0]))['file'] == name
    assert open(tmp_path / name).readline().startswith('image_name,class,rle')


def test_an_output_folder_with_a_250_character_name_is_written_and_replaced(
        world, tmp_path):
    name = _longest_name(str(tmp_path), '')
    argv = ['overlay', world['probs'], '--img-dir', world['imgs'], '--out-dir',
            tmp_path / name, '--no-progress']
    status, lines = run_main('visualize.py', argv)
    assert status == 0, lines
    status, lines = run_main('visualize.py', [*argv, '--force'])  # the .old- name too
    assert status == 0, lines
    assert os.listdir(tmp_path) == [name]
    assert sorted(os.listdir(tmp_path / name)) == [
        '.mmseg_ext_manifest.json', 'ID1', 'visualize.txt']  # the folder's record


def test_a_long_output_name_is_named_in_a_write_error(world, tmp_path):
    out = str(tmp_path / _longest_name(str(tmp_path), ''))
    code, lines = run_limited('ensemble.py', [world['probs'], world['probs2'], '--out-dir',
                                              out, '--no-progress'])
    assert_one_line_naming(code, lines, out)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('base', ['x' * 300, 'é' * 200, 'short'])
def test_hidden_names_fit_the_file_system(tmp_path, base):
    from mmseg_ext.io.staging import hidden_name, name_max
    limit = name_max(str(tmp_path))
    for tail in ('.partial-12345678', '.old-abcdefgh', '.abcdefgh.tmp'):
        name = hidden_name(base, tail, str(tmp_path))
        assert len(name.encode()) <= limit and name.startswith('.') and name.endswith(tail)
        (tmp_path / name).mkdir()  # the file system takes it
    if len(f'.{base}.partial-12345678'.encode()) <= limit:
        assert hidden_name(base, '.x', str(tmp_path)) == f'.{base}.x'
    else:  # two long names that differ only at the end stay apart
        assert hidden_name(base + 'a', '.x', str(tmp_path)) != \
            hidden_name(base + 'b', '.x', str(tmp_path))


# ------------------------------------------------------------------ staging errors
def test_a_disk_error_in_a_staged_folder_names_the_output(tmp_path):
    """An OSError of a write inside a staged folder names the output, with the file's
    place in it, and never the hidden folder; the staging is removed."""
    import errno

    from mmseg_ext.io.staged_dir import StagedDir
    from mmseg_ext.utils.errors import OutputError
    out = str(tmp_path / 'out')
    with pytest.raises(OutputError) as info:
        with StagedDir(out) as staged:
            path = staged.file('a/b.bin')
            raise OSError(errno.ENOSPC, 'No space left on device', path)
    assert str(info.value) == f'{out}/a/b.bin: cannot write the output (no space left ' \
                              'on the device)'
    with pytest.raises(OutputError, match=f'^{out}: cannot write the output \\(file too'):
        with StagedDir(out):
            raise OSError(errno.EFBIG, 'File too large')
    with pytest.raises(FileNotFoundError):  # not a write: left as it is
        with StagedDir(out):
            open(tmp_path / 'missing-input')
    assert os.listdir(tmp_path) == []


def test_get_weights_names_its_target_not_the_temporary_download(tmp_path, monkeypatch):
    """A conversion that cannot be saved (torch.save reports EFBIG as a RuntimeError
    when it writes a path itself) names the weights file."""
    import errno

    from mmseg_ext.training import weights as weights_api
    from mmseg_ext.utils.errors import OutputError
    real_open = open

    def full_disk_open(path, mode='r', *args, **kwargs):
        if 'w' in mode and '.part' in str(path):
            raise OSError(errno.ENOSPC, 'No space left on device', str(path))
        return real_open(path, mode, *args, **kwargs)

    src = tmp_path / 'src.pth'
    import torch
    torch.save({'state_dict': {'w': torch.zeros(2)}}, src)
    monkeypatch.setattr(weights_api, 'load_converter', lambda kind: (lambda s: s))
    monkeypatch.setattr('builtins.open', full_disk_open)
    target = str(tmp_path / 'pretrain' / 'x.pth')
    with pytest.raises(OutputError, match=f'^{target}: cannot write the output \\(no space'):
        weights_api.convert_checkpoint(str(src), str(tmp_path / '.x.pth.abc.part'), 'beit',
                                       source='http://x', output=target)
