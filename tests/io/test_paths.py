"""One rule for paths read from data (list/split files, COCO file_name, index.json keys)
and one for outputs (inside the output folder, never over an input), in every reader
and tool that meets them."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from conftest import run_tool
from probs_helpers import write_images, write_prob_folder

from mmseg_ext.io.images import read_image_list
from mmseg_ext.io.paths import check_output_apart, data_relpath, resolve_under
from mmseg_ext.io.staged_dir import StagedDir
from mmseg_ext.utils.errors import DataError, InvalidArgumentError

BAD_ENTRIES = [('', 'empty path'), ('/etc/passwd', 'absolute path'),
               ('../other/P1/a.png', 'leaves its folder'),
               ('a/../../x.png', 'leaves its folder'), ('..', 'leaves its folder'),
               ('C:\\data\\a.png', 'absolute path')]


@pytest.mark.parametrize('entry,problem', BAD_ENTRIES)
def test_data_relpath_refuses(entry, problem):
    with pytest.raises(DataError, match=f'list.txt:3: .*{problem}'):
        data_relpath(entry, 'list.txt:3', '/data')


def test_data_relpath_normalises():
    assert data_relpath('ID1/./a.png', 'w') == 'ID1/a.png'
    assert data_relpath('ID1\\a.png', 'w') == 'ID1/a.png'
    assert data_relpath('a/b/../c.png', 'w') == 'a/c.png'


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / 'root', tmp_path / 'outside'
    root.mkdir()
    outside.mkdir()
    (outside / 'x.png').write_bytes(b'x')
    os.symlink(str(outside), str(root / 'link'))
    with pytest.raises(DataError, match='leads outside .* through a symbolic link'):
        resolve_under(str(root), 'link/x.png', 'list.txt:1')
    (root / 'in.png').write_bytes(b'x')
    assert resolve_under(str(root), 'in.png', 'w') == osp.join(str(root), 'in.png')


def test_image_list_names_file_and_line(tmp_path):
    root = write_images(tmp_path / 'imgs', {'P1/a.png': (4, 4), 'P1/b.png': (4, 4)})
    lst = tmp_path / 'list.txt'
    lst.write_text('# comment\nP1/a\n\nP1/b.png\n')
    assert read_image_list(str(lst), '.png', root=root) == ['P1/a.png', 'P1/b.png']
    lst.write_text(f'P1/a\n{root}/P1/b.png\n')
    with pytest.raises(DataError, match=f'{lst}:2: .* is an absolute path'):
        read_image_list(str(lst), '.png', root=root)
    lst.write_text('P1/a\n../other/P1/a.png\n')
    with pytest.raises(DataError, match=f'{lst}:2: .* leaves its folder'):
        read_image_list(str(lst), '.png', root=root)


def test_staged_folder_never_writes_outside(tmp_path):
    with StagedDir(str(tmp_path / 'out')) as staged:
        for name in ('../escape.png', '/tmp/abs.png', ''):
            with pytest.raises(DataError, match='output name'):
                staged.file(name)
    assert not (tmp_path / 'escape.png').exists()


def _folder_with_key(tmp_path, key):
    folder = write_prob_folder(tmp_path / 'probs', {'a.png': (
        np.full((2, 4, 4), 0.7, np.float32), (4, 4))}, ['x', 'y'])
    index_path = osp.join(folder, 'index.json')
    index = json.load(open(index_path))
    index['images'][0]['key'] = key
    json.dump(index, open(index_path, 'w'))
    return folder


@pytest.mark.parametrize('tool', ['ensemble', 'pseudo_label', 'visualize'])
def test_index_key_escaping_the_folder_writes_nothing(tmp_path, tool):
    """A probability folder whose index.json names '../../x': one error line naming the
    index entry, nothing written anywhere."""
    folder = _folder_with_key(tmp_path, '../../x')
    other = write_prob_folder(tmp_path / 'probs2', {'a.png': (
        np.full((2, 4, 4), 0.2, np.float32), (4, 4))}, ['x', 'y'])
    out = tmp_path / 'out'
    before = sorted(p for p in os.listdir(tmp_path))
    if tool == 'ensemble':
        args = ['tools/ensemble.py', folder, other, '--out-dir', str(out)]
    elif tool == 'pseudo_label':
        args = ['tools/pseudo_label.py', folder, '--out-dir', str(out)]
    else:
        imgs = write_images(tmp_path / 'imgs', {'a.png': (4, 4)})
        before = sorted(p for p in os.listdir(tmp_path))
        args = ['tools/visualize.py', 'overlay', folder, '--img-dir', imgs, '--out-dir',
                str(out)]
    proc = run_tool(*args, '--no-progress')
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {folder}/index.json: images[0].key: '../../x' leaves its "
                     f'folder (paths there are relative to {folder})'], proc.stderr
    assert sorted(os.listdir(tmp_path)) == before
    assert not osp.exists(osp.join(tmp_path.parent, 'x.npz'))


def test_output_never_over_an_input(tmp_path):
    folder = write_prob_folder(tmp_path / 'probs', {'a.png': (
        np.full((2, 4, 4), 0.7, np.float32), (4, 4))}, ['x', 'y'])
    index = open(osp.join(folder, 'index.json')).read()
    # the reported case: --out into the probability folder itself, with --force
    proc = run_tool('tools/make_submission.py', folder, '--format', 'handbone', '--out',
                    osp.join(folder, 'index.json'), '--force', '--no-progress')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'error: --out: {folder}/index.json is inside the input folder {folder}; write '
        'outputs elsewhere']
    assert open(osp.join(folder, 'index.json')).read() == index
    with pytest.raises(InvalidArgumentError, match='is also an input'):
        check_output_apart(folder, [folder])
    with pytest.raises(InvalidArgumentError, match='holds the input'):
        check_output_apart(str(tmp_path), [folder], 'out_dir')
    check_output_apart(str(tmp_path / 'elsewhere'), [folder])  # fine


def test_handbone_split_entries_are_checked(tmp_path):
    from mmseg_ext.datasets import HandBoneDataset
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=2, images_per_patient=1,
                          size=(32, 32), num_test_patients=0, seed=1)
    root = str(tmp_path / 'hb' / 'train')
    name = sorted(os.listdir(osp.join(root, 'DCM', 'ID001')))[0]
    split = tmp_path / 'split.txt'
    for entry, problem in [(osp.join(root, 'DCM', 'ID001', name), 'absolute path'),
                           (f'../train/DCM/ID001/{name}', 'leaves its folder')]:
        split.write_text(f'ID001/{name}\n{entry}\n')
        with pytest.raises(DataError, match=f'{split}:2: .*{problem}'):
            HandBoneDataset(data_root=root, ann_file=str(split))


def test_coco_file_name_escaping_is_refused(tmp_path):
    from mmseg_ext.datasets import CocoSemanticDataset
    from mmseg_ext.datasets.synthetic.coco import make_trash_coco
    from mmseg_ext.utils.class_names import TRASH_CLASSES
    make_trash_coco(str(tmp_path / 't'), num_train=1, num_val=1, num_test=0, size=(32, 32))
    ann = tmp_path / 't' / 'train.json'
    coco = json.load(open(ann))
    coco['images'][0]['file_name'] = '../../secret.jpg'
    json.dump(coco, open(ann, 'w'))
    with pytest.raises(DataError, match="file_name: '../../secret.jpg' leaves its folder"):
        CocoSemanticDataset(data_root=str(tmp_path / 't'), ann_file='train.json',
                            data_prefix=dict(img_path=''), pipeline=[],
                            metainfo=dict(classes=TRASH_CLASSES))


def test_folder_walk_says_what_it_skipped(tmp_path):
    from mmseg_ext.io.images import list_images, skipped_note
    root = write_images(tmp_path / 'imgs', {'P1/a.png': (4, 4), 'P2/b.png': (4, 4)})
    (tmp_path / 'imgs' / 'P1' / 'notes.txt').write_text('x')
    (tmp_path / 'imgs' / 'P2' / 'c.jpg').write_bytes(b'x')
    (tmp_path / 'imgs' / '.hidden.png').write_bytes(b'x')
    skipped = []
    assert list_images(root, ('.png',), skipped) == ['P1/a.png', 'P2/b.png']
    assert sorted(skipped) == ['P1/notes.txt', 'P2/c.jpg']
    assert skipped_note(root, skipped, ('.png',)) == (
        f'{root}: skipped 2 file(s) that are not .png images (P1/notes.txt, P2/c.jpg)')
    assert skipped_note(root, [], ('.png',)) == ''


def test_port_split_entries_are_checked(tmp_path):
    from mmseg_ext.datasets import PortStructuresDataset
    from mmseg_ext.datasets.synthetic.port import make_port_dataset
    make_port_dataset(str(tmp_path / 'port'), num_labeled=2, num_unlabeled=0, num_test=0,
                      size=(16, 16))
    split = tmp_path / 'split.txt'
    split.write_text('0000\n../../labeled/images/0001\n')
    with pytest.raises(DataError, match=f'{split}:2: .* leaves its folder'):
        PortStructuresDataset(data_root=str(tmp_path / 'port'), ann_file=str(split))
