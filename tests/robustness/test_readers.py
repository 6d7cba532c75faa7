"""Every reader of a data file, crossed with contents no reader may pass on as a traceback,
a hang or a silent wrong value: bytes that are not UTF-8, truncated files, numbers past
int64, degenerate image sizes (1xN, Nx1, 0 bytes), FIFOs and symbolic-link loops.

Where a tool reads the file, the cell runs the tool's main in-process and asserts the exit
status, one ``error:`` line naming the file and an unchanged file snapshot; elsewhere the
library reader is called and must raise one domain error naming the file. Legitimate
inputs (a UTF-8 byte-order mark, a 1xN image) must give the correct result.
The boundary lives in :mod:`mmseg_ext.utils.readers` (text, strict JSON, regular files,
the pixel cap) and :func:`mmseg_ext.io.images.list_images` (the image walk).
"""
import hashlib
import json
import os
import os.path as osp
import stat
import sys

import cv2
import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from probs_helpers import two_image_world, write_images  # noqa: E402

from mmseg_ext.utils.errors import MmsegExtError  # noqa: E402
from robustness.test_bad_inputs import CLASSES, assert_refused, run_main  # noqa: E402

HUGE = '9' * 25
NOT_UTF8 = b'\xff\xfe\x80 not utf-8 \xc3\x28\n'


def snapshot(*roots):
    """Path -> content hash, like test_bad_inputs.snapshot, but a FIFO, socket or link
    loop is recorded by its kind and never opened (opening a FIFO blocks)."""
    seen = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            seen[dirpath] = None
            for name in files + [d for d in dirs if osp.islink(osp.join(dirpath, d))]:
                path = osp.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    seen[path] = 'broken-or-looping-link'
                    continue
                if stat.S_ISREG(st.st_mode):
                    with open(path, 'rb') as f:
                        seen[path] = hashlib.sha1(f.read()).hexdigest()
                else:
                    seen[path] = stat.S_IFMT(st.st_mode)
    return seen


def refused_by_tool(tool, argv, root, *words, code=1):
    before = snapshot(root)
    status, lines = run_main(tool, argv)
    assert_refused(status, lines, code, *words)
    assert snapshot(root) == before


def refused_by_library(call, *words):
    with pytest.raises(MmsegExtError) as info:
        call()
    message = str(info.value)
    assert '\n' not in message and all(w in message for w in words), message


# ------------------------------------------------------------------ bad file makers
def make_fifo(path):
    os.mkfifo(path)


def make_self_loop(path):
    os.symlink(osp.basename(path), path)


def make_not_utf8(path):
    with open(path, 'wb') as f:
        f.write(NOT_UTF8)


def make_empty(path):
    open(path, 'wb').close()


BAD = {  # name -> (maker, words of the error)
    'fifo': (make_fifo, 'not a regular file (a FIFO (named pipe))'),
    'link loop': (make_self_loop, 'a symbolic link that loops'),
}


@pytest.fixture
def world(tmp_path):
    return two_image_world(tmp_path, CLASSES)


def submission(w, *extra):
    return [w['probs'], '--format', 'handbone', '--out', osp.join(w['root'], 'sub.csv'),
            *extra]


# ------------------------------------------------------------------ image folders
@pytest.mark.parametrize('kind', sorted(BAD))
def test_special_entries_in_an_image_folder(world, kind):
    maker, words = BAD[kind]
    entry = osp.join(world['imgs'], 'ID1', 'c.png')
    maker(entry)
    refused_by_tool('make_submission.py', submission(world, '--img-dir', world['imgs']),
                    world['root'], f'{entry}: {words}')


def test_folder_link_loop_in_an_image_folder(world):
    entry = osp.join(world['imgs'], 'ID1', 'back')
    os.symlink('..', entry)
    refused_by_tool('make_submission.py', submission(world, '--img-dir', world['imgs']),
                    world['root'], f'{entry}: a symbolic link that loops')


def test_fifo_without_an_image_suffix_is_skipped_unopened(world):
    from mmseg_ext.io.images import list_images
    os.mkfifo(osp.join(world['imgs'], 'ID1', 'notes'))
    skipped = []
    assert list_images(world['imgs'], skipped=skipped) == ['ID1/a.png', 'ID1/b.png']
    assert skipped == ['ID1/notes']


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n truncated', NOT_UTF8])
def test_images_that_do_not_decode(world, content):
    path = osp.join(world['imgs'], 'ID1', 'a.png')
    with open(path, 'wb') as f:
        f.write(content)
    refused_by_tool('make_submission.py', submission(world, '--img-dir', world['imgs']),
                    world['root'], path)


def test_pixel_cap_is_read_from_the_header(tmp_path, monkeypatch):
    from mmseg_ext.io.images import image_size, read_image, read_label_map
    path = str(tmp_path / 'big.png')
    cv2.imwrite(path, np.zeros((40, 50), np.uint8))
    monkeypatch.setenv('MMSEG_EXT_MAX_PIXELS', '1999')
    for reader in (image_size, read_image, read_label_map):
        refused_by_library(lambda r=reader: r(path), path, '40x50', '2000 pixels',
                           'MMSEG_EXT_MAX_PIXELS')
    monkeypatch.setenv('MMSEG_EXT_MAX_PIXELS', '2000')
    assert image_size(path) == (40, 50) and read_image(path).shape == (40, 50, 3)


def test_pixel_cap_in_the_dataset_loader(tmp_path, monkeypatch):
    from mmseg_ext.datasets.transforms.loading import LoadImageFromFileChecked
    path = str(tmp_path / 'big.png')
    cv2.imwrite(path, np.zeros((40, 50, 3), np.uint8))
    monkeypatch.setenv('MMSEG_EXT_MAX_PIXELS', '100')
    refused_by_library(lambda: LoadImageFromFileChecked()(dict(img_path=path)), path,
                       'MMSEG_EXT_MAX_PIXELS')
    fifo = str(tmp_path / 'pipe.png')
    os.mkfifo(fifo)
    refused_by_library(lambda: LoadImageFromFileChecked()(dict(img_path=fifo)), fifo, 'FIFO')


@pytest.mark.parametrize('shape', [(1, 300), (300, 1), (1, 1)])
def test_degenerate_image_sizes_are_read(tmp_path, shape):
    """A 1xN image is legitimate: every reader gives its true size and pixels."""
    from mmseg_ext.io.images import image_size, read_image
    path = str(tmp_path / 'thin.png')
    cv2.imwrite(path, np.full(shape + (3,), 7, np.uint8))
    assert image_size(path) == shape
    assert read_image(path).shape == shape + (3,) and read_image(path).max() == 7


def test_keep_ratio_resize_of_a_narrow_image_names_it(tmp_path):
    """A keep-ratio resize rounds the short side of a 1x3000 image to 0 and cv2 fails:
    one error naming the image, its size and why (not a cv2.error traceback); a 1x300
    image passes the same pipeline."""
    from mmengine.dataset import Compose
    from mmseg.registry import TRANSFORMS

    import mmseg_ext.datasets  # noqa: F401  (registers the transforms)
    from mmseg_ext.datasets.transforms.pipeline_geometry import pipeline_errors
    pipeline = Compose([TRANSFORMS.build(dict(type='LoadImageFromFileChecked')),
                        TRANSFORMS.build(dict(type='Resize', scale=(512, 512),
                                              keep_ratio=True))])
    ok, narrow = str(tmp_path / 'ok.png'), str(tmp_path / 'narrow.png')
    cv2.imwrite(ok, np.zeros((1, 300, 3), np.uint8))
    cv2.imwrite(narrow, np.zeros((1, 3000, 3), np.uint8))
    with pipeline_errors(ok):
        assert pipeline(dict(img_path=ok))['img'].shape[:2] == (2, 512)

    def run():
        with pipeline_errors(narrow):
            pipeline(dict(img_path=narrow))
    refused_by_library(run, narrow, '1x3000', 'rounds the short side')


# ------------------------------------------------------------------ text files
def split_world(tmp_path, text_bytes):
    from mmseg_ext.datasets.synthetic import make_shapes_dataset  # noqa: F401
    root = tmp_path / 'hb'
    write_images(root / 'DCM', {'ID001/a.png': (8, 8), 'ID002/b.png': (8, 8)})
    split = root / 'split.txt'
    split.write_bytes(text_bytes)
    return str(root), str(split)


def hand_bone(root, split):
    from mmseg_ext.datasets.hand_bone import HandBoneDataset
    return HandBoneDataset(data_root=root, ann_file=split, test_mode=True,
                           data_prefix=dict(img_path=osp.join(root, 'DCM'),
                                            seg_map_path=''), pipeline=[], lazy_init=False)


def test_split_file_with_a_bom(tmp_path):
    root, split = split_world(tmp_path, '\ufeffID001/a\nID002/b.png\n'.encode('utf-8'))
    ds = hand_bone(root, split)
    assert [osp.relpath(ds.get_data_info(i)['img_path'], root) for i in range(len(ds))] \
        == ['DCM/ID001/a.png', 'DCM/ID002/b.png']


@pytest.mark.parametrize('kind', ['not utf-8', 'fifo', 'link loop'])
def test_bad_split_files(tmp_path, kind):
    from mmseg_ext.datasets.coco_index import read_name_list
    from mmseg_ext.io.images import read_image_list
    root, split = split_world(tmp_path, b'ID001/a\n')
    os.remove(split)
    words = {'not utf-8': 'not UTF-8 text', 'fifo': 'FIFO', 'link loop': 'loops'}[kind]
    {'not utf-8': make_not_utf8, 'fifo': make_fifo, 'link loop': make_self_loop}[kind](split)
    for call in (lambda: hand_bone(root, split), lambda: read_name_list(split),
                 lambda: read_image_list(split, '.png')):
        refused_by_library(call, split, words)


def test_classes_file_with_a_bom_and_bad_classes_files(world):
    from mmseg_ext.io.submission import read_class_list
    path = osp.join(world['root'], 'classes.txt')
    with open(path, 'w', encoding='utf-8-sig') as f:
        f.write('Trapezium\nPisiform\n')
    assert read_class_list(path) == tuple(CLASSES)
    with open(path, 'w', encoding='utf-8-sig') as f:
        f.write(json.dumps(CLASSES))
    assert read_class_list(path) == tuple(CLASSES)
    csv_path = osp.join(world['root'], 'in.csv')
    with open(csv_path, 'w') as f:
        f.write('image_name,class,rle\n' + ''.join(f'{i},{c},1 1\n' for i in ('a.png', 'b.png')
                                                   for c in CLASSES))
    status, lines = run_main('make_submission.py', ['--check', csv_path, '--format',
                                                    'handbone', '--img-dir', world['imgs'],
                                                    '--classes', path])
    assert status == 0, lines
    for maker, words in ((make_not_utf8, 'not UTF-8'), (make_fifo, 'FIFO')):
        os.remove(path)
        maker(path)
        refused_by_tool('make_submission.py', ['--check', csv_path, '--format', 'handbone',
                                               '--img-dir', world['imgs'], '--classes', path],
                        world['root'], path, words)


@pytest.mark.parametrize('kind', ['not utf-8', 'fifo', 'truncated'])
def test_bad_csv_files(world, kind):
    csv_path = osp.join(world['root'], 'in.csv')
    if kind == 'not utf-8':
        make_not_utf8(csv_path)
    elif kind == 'fifo':
        make_fifo(csv_path)
    else:
        with open(csv_path, 'w') as f:
            f.write('image_name,class,rle\na.png,"Trap')
    before = snapshot(world['root'])
    status, lines = run_main('make_submission.py', ['--check', csv_path, '--format',
                                                    'handbone', '--img-dir', world['imgs']])
    if kind == 'truncated':  # a report of the rows, exit 1
        assert status == 1 and not any('Traceback' in line for line in lines)
    else:
        assert_refused(status, lines, 1, csv_path)
    assert snapshot(world['root']) == before


# ------------------------------------------------------------------ JSON files
JSON_BAD = {
    'not utf-8': (NOT_UTF8, 'not UTF-8 text'),
    'truncated': (b'{"images": [', 'malformed JSON'),
    'beyond int64': (f'{{"images": [], "x": {HUGE}}}'.encode(), 'beyond int64'),
    'duplicate key': (b'{"images": [], "images": []}', "duplicate key 'images'"),
}


@pytest.mark.parametrize('case', sorted(JSON_BAD) + ['fifo', 'link loop'])
def test_bad_coco_json(world, case):
    path = osp.join(world['root'], 'coco.json')
    if case in JSON_BAD:
        with open(path, 'wb') as f:
            f.write(JSON_BAD[case][0])
        words = JSON_BAD[case][1]
    else:
        BAD[case][0](path)
        words = BAD[case][1]
    refused_by_tool('kfold.py', ['coco', path, '--out', osp.join(world['root'], 'folds')],
                    world['root'], path, words)
    refused_by_tool('coco_to_masks.py', [path, osp.join(world['root'], 'masks'),
                                         '--classes', 'Background,a'],
                    world['root'], path, words)


def test_two_coco_categories_with_one_name(world):
    path = osp.join(world['root'], 'coco.json')
    with open(path, 'w') as f:
        json.dump(dict(images=[dict(id=1, file_name='a.jpg', height=4, width=4)],
                       annotations=[], categories=[dict(id=3, name='cat'),
                                                   dict(id=7, name='cat')]), f)
    refused_by_tool('coco_to_masks.py', [path, osp.join(world['root'], 'masks'),
                                         '--classes', 'Background,cat'],
                    world['root'], f'{path}: categories 3 and 7 are both named \'cat\'')


def test_class_list_longer_than_uint8_labels(world):
    from mmseg_ext.datasets.coco_index import index_coco
    from mmseg_ext.io.images import check_label_capacity
    refused_by_library(lambda: check_label_capacity([f'c{i}' for i in range(256)], 255, 'x'),
                       'x: 256 classes', 'at most 255')
    check_label_capacity([f'c{i}' for i in range(255)], 255, 'x')
    coco = dict(images=[dict(id=1, file_name='a.jpg', height=4, width=4)], annotations=[],
                categories=[])
    refused_by_library(lambda: index_coco(coco, [f'c{i}' for i in range(300)], 'f.json'),
                       'f.json: 300 classes')


@pytest.mark.parametrize('case', sorted(JSON_BAD) + ['fifo'])
def test_bad_hand_bone_json(tmp_path, case):
    from mmseg_ext.io.hand_bone_json import parse_hand_bone_json
    path = str(tmp_path / 'a.json')
    if case == 'fifo':
        make_fifo(path)
        words = 'FIFO'
    else:
        with open(path, 'wb') as f:
            f.write(JSON_BAD[case][0].replace(b'images', b'annotations'))
        words = JSON_BAD[case][1].replace('images', 'annotations')
    refused_by_library(lambda: parse_hand_bone_json(path, CLASSES, (8, 8)), path, words)


def test_hand_bone_json_size_beyond_the_cap(tmp_path):
    from mmseg_ext.io.hand_bone_json import parse_hand_bone_json
    path = str(tmp_path / 'a.json')
    with open(path, 'w') as f:
        json.dump(dict(annotations=[], metadata=dict(height=10 ** 15, width=10 ** 15)), f)
    refused_by_library(lambda: parse_hand_bone_json(path, CLASSES), path, 'MMSEG_EXT_MAX_PIXELS')


# ------------------------------------------------------------------ probability folders
@pytest.mark.parametrize('case', ['not utf-8', 'fifo', 'link loop', 'truncated'])
def test_bad_probability_files(world, case):
    npz = osp.join(world['probs'], 'ID1', 'a.npz')
    os.remove(npz)
    if case == 'not utf-8':
        make_not_utf8(npz)
    elif case == 'truncated':
        with open(npz, 'wb') as f:
            f.write(b'PK\x03\x04 truncated zip')
    else:
        BAD[case][0](npz)
    refused_by_tool('make_submission.py', submission(world), world['root'], npz)


@pytest.mark.parametrize('case', ['not utf-8', 'fifo', 'truncated'])
def test_bad_probability_index(world, case):
    index = osp.join(world['probs'], 'index.json')
    os.remove(index)
    if case == 'not utf-8':
        make_not_utf8(index)
    elif case == 'fifo':
        make_fifo(index)
    else:
        with open(index, 'w') as f:
            f.write('{"format": "mmseg_ext.probs-index", "images": [')
    refused_by_tool('make_submission.py', submission(world), world['root'], index)


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize('case', ['not a checkpoint', 'empty', 'fifo', 'pickle index'])
def test_bad_checkpoints(tmp_path, case):
    from mmseg_ext.utils.checkpoint import load_from_local
    path = str(tmp_path / 'x.pth')
    if case == 'not a checkpoint':
        make_not_utf8(path)
    elif case == 'empty':
        make_empty(path)
    elif case == 'fifo':
        make_fifo(path)
    else:  # a protocol-2 pickle whose first opcode reads past the memo (IndexError)
        with open(path, 'wb') as f:
            f.write(b'\x80\x02h\x05.')
    refused_by_library(lambda: load_from_local(path), path)


# ------------------------------------------------------------------ the reader module
def test_strict_json_reader():
    from mmseg_ext.utils.readers import loads_json
    assert loads_json('{"a": [1, 2.5, -9223372036854775807]}', 'x') == \
        {'a': [1, 2.5, -9223372036854775807]}
    for text, words in (('{"a": 1, "a": 2}', "duplicate key 'a'"), ('[NaN]', 'NaN'),
                        ('[1e400]', 'infinity'), (f'[{HUGE}]', 'beyond int64'),
                        ('[9223372036854775808]', 'beyond int64'), ('[' * 100000, 'JSON')):
        refused_by_library(lambda t=text: loads_json(t, 'where.json'), 'where.json', words)


def test_text_reader_drops_the_bom_only_at_the_start(tmp_path):
    from mmseg_ext.utils.readers import read_lines
    path = tmp_path / 't.txt'
    path.write_bytes('\ufeffa\n\n # c\nb\ufeff\n'.encode('utf-8'))
    assert read_lines(str(path), comments=True) == [(1, 'a'), (4, 'b\ufeff')]
