"""kfold and make_synthetic_handbone own their output folder through the manifest
(mmseg_ext/io/ownership.py): --force replaces only what they wrote, removes their own
stale files, and refuses files they did not write; --size is bounded."""
import os
import os.path as osp

import pytest

from .test_bad_inputs import assert_refused, run_main, snapshot


@pytest.fixture
def imgs(tmp_path):
    d = tmp_path / 'imgs'
    d.mkdir()
    for i in range(8):
        (d / f'im{i}.jpg').write_bytes(b'')
    return str(d)


def kfold(imgs, out, *extra):
    return run_main('kfold.py', ['folder', imgs, '--out', out, *extra])


def test_kfold_refuses_a_split_file_the_user_wrote(imgs, tmp_path):
    out = str(tmp_path / 's')
    os.makedirs(out)
    open(osp.join(out, 'train_fold0.txt'), 'w').write('mine\n')
    before = snapshot(str(tmp_path))
    code, lines = kfold(imgs, out, '-k', '2', '--force')
    assert_refused(code, lines, 1, out, 'did not write')
    assert snapshot(str(tmp_path)) == before


def test_kfold_refuses_a_file_the_user_replaced_after_a_run(imgs, tmp_path):
    out = str(tmp_path / 's')
    assert kfold(imgs, out, '-k', '2')[0] == 0
    open(osp.join(out, 'val_fold1.txt'), 'w').write('mine\n')
    before = snapshot(str(tmp_path))
    code, lines = kfold(imgs, out, '-k', '2', '--force', '--seed', '3')
    assert_refused(code, lines, 1, osp.join(out, 'val_fold1.txt'), 'changed since')
    assert snapshot(str(tmp_path)) == before


def test_kfold_force_removes_its_stale_files(imgs, tmp_path):
    out = str(tmp_path / 's')
    assert kfold(imgs, out, '-k', '5')[0] == 0
    open(osp.join(out, 'notes.md'), 'w').write('kept')
    code, lines = kfold(imgs, out, '-k', '2', '--force')
    assert code == 0, lines
    assert sorted(os.listdir(out)) == sorted(
        ['.mmseg_ext_manifest.json', 'folds.csv', 'notes.md'] +
        [f'{s}_fold{j}.txt' for s in ('train', 'val') for j in range(2)])
    # without --force an earlier run's files are refused, nothing changes
    before = snapshot(str(tmp_path))
    code, lines = kfold(imgs, out, '-k', '3')
    assert_refused(code, lines, 1, 'already exists')
    assert snapshot(str(tmp_path)) == before


def synth(out, *extra):
    return run_main('make_synthetic_handbone.py', [
        '--out', out, '--patients', '1', '--test-patients', '1', '--size', '32x32',
        *extra])


@pytest.mark.parametrize('when', ['before', 'after'])
def test_synthetic_force_refuses_a_user_file_in_train(tmp_path, when):
    out = str(tmp_path / 'u')
    if when == 'after':
        assert synth(out)[0] == 0
    os.makedirs(osp.join(out, 'train', 'DCM'), exist_ok=True)
    user = osp.join(out, 'train', 'DCM', 'mine.png')
    open(user, 'wb').write(b'mine')
    before = snapshot(str(tmp_path))
    code, lines = synth(out, '--force', '--seed', '2')
    assert_refused(code, lines, 1, out)
    if when == 'after':
        assert user in lines[-1] and 'not written by this tool' in lines[-1]
    assert snapshot(str(tmp_path)) == before


def test_synthetic_force_replaces_its_own_output(tmp_path):
    out = str(tmp_path / 'u')
    assert synth(out)[0] == 0
    first = snapshot(out)
    code, lines = synth(out, '--force', '--seed', '2')
    assert code == 0, lines
    second = snapshot(out)
    assert len(second) == len(first) and second != first
    import json
    listed = json.load(open(osp.join(out, '.mmseg_ext_manifest.json')))['entries']
    assert {osp.relpath(p, out) for p, h in second.items() if h is not None} == {
        r for r, e in listed.items() if e['type'] == 'file'} | {'.mmseg_ext_manifest.json'}
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def test_synthetic_size_over_the_pixel_cap_is_refused(tmp_path):
    code, lines = synth(str(tmp_path / 'u'), '--size', '99999x99999')
    assert_refused(code, lines, 2, '--size', 'over the limit')
    assert os.listdir(tmp_path) == []
