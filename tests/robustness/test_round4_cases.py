"""The fourth round of bad inputs (session 13): each class fixed where it lives.

* the name of a file's ownership record taken by a user file (:mod:`mmseg_ext.io.owned_file`);
* a port sample with a background row or a duplicated row, a trash ``test.json`` whose
  sizes or image list disagree with the probabilities (:mod:`mmseg_ext.io.submission`,
  :mod:`mmseg_ext.submission.make`);
* an option silently overridden (``--thresholds NUMBER`` with ``--threshold``);
* two ground-truth files for one image (:mod:`mmseg_ext.io.ground_truth`);
* EXIF orientation: every size reader gives the size the loader decodes
  (:mod:`mmseg_ext.io.images`), palette label PNGs read as their indices;
* chart values that are not numbers, chart names of another format
  (:mod:`mmseg_ext.visualization.charts`);
* JSON written with ``NaN`` that the project's own reader refuses (``dumps_json``);
* inputs with nothing in them (an empty probability index, a COCO file without images,
  no patients to make);
* suffixes without their dot, text files given as checkpoints, a self-training run that
  failed before finishing any stage, a read-only output named by its staging path, an
  output file name ending with a slash.

Each refusal asserts the exit status, one ``error:`` line naming the problem, and that no
file changed.
"""
import io
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from probs_helpers import two_image_world, write_prob_folder  # noqa: E402

from robustness.test_bad_inputs import CLASSES, run_main  # noqa: E402
from robustness.test_hostile_s11 import refused  # noqa: E402

PORT = ['background', 'container_truck', 'forklift', 'reach_stacker', 'ship']


@pytest.fixture
def world(tmp_path):
    return two_image_world(tmp_path, CLASSES, ('probs', 'probs2'))


# ------------------------------------------------------------------ ownership records
def test_a_user_file_with_the_record_name_is_never_written_over(world, tmp_path):
    record = tmp_path / '.u.csv.mmseg_ext_owner.json'
    record.write_text('user notes\n')
    refused(world['root'], 'make_submission.py',
            [world['probs'], '--format', 'handbone', '--out', tmp_path / 'u.csv',
             '--no-progress'], 1, str(record), 'not such a record')
    assert record.read_text() == 'user notes\n' and not (tmp_path / 'u.csv').exists()


# ------------------------------------------------------------------ submissions
@pytest.fixture
def port_probs(tmp_path):
    probs = np.zeros((5, 4, 4), np.float32)
    probs[0] = 1.0
    probs[:, 2:] = 0.0
    probs[4, 2:] = 1.0  # the lower half is a ship (a full mask would read as empty)
    return write_prob_folder(tmp_path / 'pp', {'p1.png': (probs, (4, 4))}, PORT,
                             task='multi-class')


@pytest.mark.parametrize('rows,words', [
    ('p1.png,background,\n', ["class 'background' (background) has no rows"]),
    ('p1.png,0,\n', ["class '0' (background) has no rows"]),
    ('p1.png,ship,\np1.png,ship,\n', [':3:', '(p1.png, ship) already on line 2']),
])
def test_port_sample_rows_the_checker_would_reject_are_refused(tmp_path, port_probs, rows,
                                                                words):
    sample = tmp_path / 's.csv'
    sample.write_text('file_name,class,prediction\n' + rows)
    refused(str(tmp_path), 'make_submission.py',
            [port_probs, '--format', 'port', '--sample', sample, '--out', tmp_path / 'o.csv',
             '--no-progress'], 1, str(sample), *words)


def test_a_valid_port_sample_still_writes_the_rows_it_names(tmp_path, port_probs):
    sample = tmp_path / 's.csv'
    sample.write_text('file_name,class,prediction\np1.png,ship,\np1.png,forklift,\n')
    status, lines = run_main('make_submission.py', [
        port_probs, '--format', 'port', '--sample', sample, '--out', tmp_path / 'o.csv',
        '--no-progress'])
    assert status == 0, lines
    rows = (tmp_path / 'o.csv').read_text().splitlines()
    assert [r.split(',')[:2] for r in rows[1:]] == [['p1.png', 'ship'], ['p1.png', 'forklift']]
    assert rows[1].split(',')[2] == '8 8'  # row-major from index 0: pixels 8..15
    assert rows[2].split(',')[2] == '0 16'  # no forklift pixel: the format's empty mask


def test_a_full_mask_that_the_port_format_writes_as_empty_is_warned(tmp_path):
    probs = np.zeros((5, 4, 4), np.float32)
    probs[4] = 1.0  # every pixel is a ship: '0 16', which is also the empty mask
    folder = write_prob_folder(tmp_path / 'pp', {'p1.png': (probs, (4, 4))}, PORT,
                               task='multi-class')
    sample = tmp_path / 's.csv'
    sample.write_text('file_name,class,prediction\np1.png,ship,\np1.png,forklift,\n')
    status, lines = run_main('make_submission.py', [
        folder, '--format', 'port', '--sample', sample, '--out', tmp_path / 'o.csv',
        '--no-progress'])
    assert status == 0
    assert lines == ['warning: 1 row(s) predict a class on every pixel of the image; the '
                     'port format writes that as its empty mask (0 {size}), so the scorer '
                     'reads them as empty']


def test_a_number_for_thresholds_does_not_go_with_threshold(world, tmp_path):
    refused(world['root'], 'make_submission.py',
            [world['probs'], '--format', 'handbone', '--out', tmp_path / 't.csv',
             '--thresholds', '0.95', '--threshold', '0.1', '--no-progress'], 2,
            '--threshold', '--thresholds 0.95')


@pytest.fixture
def trash_probs(tmp_path):
    from mmseg_ext.utils.class_names import TRASH_CLASSES
    one = np.eye(11, dtype=np.float32)[np.zeros((4, 4), int)].transpose(2, 0, 1)
    return write_prob_folder(tmp_path / 'pt', {'b/1.jpg': (one, (16, 12)),
                                               'b/2.jpg': (one, (16, 12))},
                             TRASH_CLASSES, task='multi-class')


@pytest.mark.parametrize('images,words', [
    ([('b/1.jpg', 15, 12), ('b/2.jpg', 16, 12)], ['image b/1.jpg is 15x12', '16x12']),
    ([('b/1.jpg', 16, 12)], ['1 image(s) with probabilities are not in', 'b/2.jpg']),
    ([('b/1.jpg', 16, 12), ('b/2.jpg', 16.0, 12)], ['images[1] (b/2.jpg)', 'integers >= 1']),
])
def test_trash_test_json_sizes_and_images_must_match_the_probabilities(
        tmp_path, trash_probs, images, words):
    test_json = tmp_path / 'test.json'
    test_json.write_text(json.dumps(dict(images=[
        dict(id=i, file_name=n, height=h, width=w) for i, (n, h, w) in enumerate(images)],
        annotations=[], categories=[])))
    refused(str(tmp_path), 'make_submission.py',
            [trash_probs, '--format', 'trash', '--test-json', test_json,
             '--out', tmp_path / 'o.csv', '--no-progress'], 1, *words)


# ------------------------------------------------------------------ ground truth
def test_two_ground_truth_files_for_one_image_are_refused(world, tmp_path):
    gt = tmp_path / 'gt' / 'ID1'
    os.makedirs(gt)
    for name in ('a', 'b'):
        np.save(gt / f'{name}.npy', np.ones((2, 8, 8), np.uint8))
    cv2.imwrite(str(gt / 'a.png'), np.zeros((8, 8), np.uint8))
    refused(world['root'], 'tune_thresholds.py',
            [world['probs'], '--gt', tmp_path / 'gt', '--no-progress'], 1,
            'several ground-truth files for ID1/a', 'a.npy', 'a.png')


def test_palette_label_pngs_are_read_as_their_indices(tmp_path):
    from mmseg_ext.io.images import read_label_map
    labels = np.zeros((6, 5), np.uint8)
    labels[:, 3:] = 2
    labels[0, 0] = 1
    img = Image.fromarray(labels, 'P')
    img.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * 759)
    img.save(tmp_path / 'l.png')
    assert np.array_equal(read_label_map(str(tmp_path / 'l.png')), labels)


# ------------------------------------------------------------------ EXIF orientation
def _encoded(array, fmt, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('fmt', ['PNG', 'JPEG'])
def test_every_size_reader_agrees_with_the_decoded_image(tmp_path, fmt, orientation):
    """OpenCV's colour decoding (the 8-bit loader) is the reference: the header size,
    the file size and the 16-bit path all give its shape, for every EXIF orientation."""
    from mmseg_ext.io.images import apply_orientation, decode_image, header_size, image_size
    rng = np.random.default_rng(orientation)
    array = rng.integers(0, 255, (20, 12, 3), dtype=np.uint8)
    data = _encoded(array, fmt, orientation)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    path = tmp_path / f'x.{fmt.lower()}'
    path.write_bytes(data)
    assert header_size(data) == image_size(str(path)) == reference.shape[:2]
    assert decode_image(data).shape == reference.shape
    stored = cv2.imdecode(np.frombuffer(data, np.uint8),
                          cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert np.array_equal(apply_orientation(stored, orientation), reference)
    if fmt == 'PNG':  # 16 bits: decoded by another path, turned upright the same way
        deep = _encoded((rng.integers(0, 4095, (20, 12))).astype(np.uint16), fmt, orientation)
        assert decode_image(deep).shape[:2] == header_size(deep) == reference.shape[:2]


def test_coco_sizes_are_checked_against_the_upright_image(tmp_path):
    root = tmp_path / 'imgs'
    os.makedirs(root)
    (root / '1.jpg').write_bytes(_encoded(np.zeros((20, 10, 3), np.uint8), 'JPEG', 6))

    def coco(h, w):
        path = tmp_path / f'c{h}x{w}.json'
        path.write_text(json.dumps(dict(
            images=[dict(id=1, file_name='1.jpg', height=h, width=w)],
            annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0, area=16,
                              bbox=[1, 1, 4, 4], segmentation=[[1, 1, 5, 1, 5, 5, 1, 5]])],
            categories=[dict(id=1, name='Paper')])))
        return path

    refused(str(tmp_path), 'coco_to_masks.py',
            [coco(20, 10), tmp_path / 'm', '--img-root', root, '--no-progress'], 1,
            'image is 20x10 (width x height, after its EXIF orientation')
    status, lines = run_main('coco_to_masks.py', [coco(10, 20), tmp_path / 'm2',
                                                  '--img-root', root, '--no-progress'])
    assert status == 0, lines
    assert cv2.imread(str(tmp_path / 'm2' / '1.png'), cv2.IMREAD_UNCHANGED).shape == (10, 20)


def test_coco_duplicate_file_names_are_named_with_their_ids(tmp_path):
    path = tmp_path / 'd.json'
    path.write_text(json.dumps(dict(images=[
        dict(id=7, file_name='a.jpg', height=4, width=4),
        dict(id=9, file_name='a.jpg', height=4, width=4)], annotations=[],
        categories=[dict(id=1, name='P')])))
    refused(str(tmp_path), 'coco_to_masks.py', [path, tmp_path / 'm', '--no-progress'], 1,
            'images 7 (a.jpg) and 9 (a.jpg) have the same file_name')


# ------------------------------------------------------------------ charts
@pytest.mark.parametrize('value', [None, '80', True, [1]])
def test_a_charted_metric_with_a_class_that_is_not_a_number_is_refused(tmp_path, value):
    metrics = tmp_path / 'm.json'
    metrics.write_text(json.dumps({'Dice.finger-1': value, 'Dice.finger-2': 30}))
    refused(str(tmp_path), 'visualize.py',
            ['chart', metrics, '--out', tmp_path / 'c.png', '--no-progress'], 1,
            "'Dice.finger-1'", 'not a number')


def test_chart_files_get_the_format_their_name_says(tmp_path):
    metrics = tmp_path / 'm.json'
    metrics.write_text(json.dumps({'Dice.a': 50, 'Dice.b': 70}))
    refused(str(tmp_path), 'visualize.py',
            ['chart', metrics, '--out', tmp_path / 'c.txt', '--no-progress'], 1,
            'c.txt', '.png')
    for name, magic in (('c.jpg', b'\xff\xd8'), ('c.png', b'\x89PNG'), ('c', b'\x89PNG'),
                        ('c.svg', b'<?xml')):
        status, lines = run_main('visualize.py', ['chart', metrics, '--out', tmp_path / name,
                                                  '--no-progress'])
        assert status == 0, lines
        assert (tmp_path / name).read_bytes().startswith(magic), name


# ------------------------------------------------------------------ JSON out
def test_json_the_tools_write_reads_back_with_their_strict_reader():
    from mmseg_ext.utils.readers import dumps_json, loads_json
    value = dict(score=float('nan'), per=[1.0, float('inf'), np.float32(0.5)],
                 deep={'x': (np.float64('nan'), 2)}, arr=np.array([0.25, np.nan]))
    assert loads_json(dumps_json(value), 'x') == dict(
        score=None, per=[1.0, None, 0.5], deep={'x': [None, 2]}, arr=[0.25, None])


# ------------------------------------------------------------------ empty inputs
def test_inputs_with_nothing_in_them_are_refused(world, tmp_path):
    empty = tmp_path / 'empty'
    os.makedirs(empty)
    (empty / 'index.json').write_text(json.dumps(dict(
        format='mmseg_ext.probs-index', version=1, task='multi-label', classes=CLASSES,
        dtype='uint8', source={}, num_images=0, images=[])))
    refused(world['root'], 'tune_thresholds.py',
            [empty, '--gt', world['imgs'], '--out', tmp_path / 't.json', '--no-progress'], 1,
            'index.json: lists no images')
    refused(world['root'], 'ensemble.py',
            [empty, world['probs'], '--out-dir', tmp_path / 'e', '--no-progress'], 1,
            'lists no images')
    coco = tmp_path / 'c.json'
    coco.write_text(json.dumps(dict(images=[], annotations=[],
                                    categories=[dict(id=1, name='P')])))
    refused(world['root'], 'coco_to_masks.py', [coco, tmp_path / 'm', '--no-progress'], 1,
            'lists no images')
    refused(world['root'], 'make_synthetic_handbone.py',
            ['--out', tmp_path / 's', '--patients', '0', '--test-patients', '0',
             '--no-progress'], 2, '--patients', 'no patients to make')


# ------------------------------------------------------------------ options and files
@pytest.mark.parametrize('tool,argv', [
    ('kfold.py', ['folder', '{imgs}', '--img-suffix', 'png', '--out', '{out}', '-k', '2']),
    ('kfold.py', ['folder', '{imgs}', '--seg-suffix', 'png', '--labels', '{imgs}',
                  '--out', '{out}', '-k', '2']),
    ('inference.py', ['{cfg}', '{ckpt}', '--img-dir', '{imgs}', '--out-dir', '{out}',
                      '--suffix', '.png', 'jpg']),
])
def test_a_suffix_without_its_dot_is_refused(world, tmp_path, tool, argv):
    values = dict(imgs=world['imgs'], out=tmp_path / 'o', ckpt=tmp_path / 'm.pth',
                  cfg='custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-'
                      'synth-128x128.py')
    refused(world['root'], tool, [str(a).format(**values) for a in argv], 2,
            'is not a file suffix', "extension's dot")


def test_suffixes_with_a_dot_and_a_name_part_are_taken():
    from mmseg_ext.utils.cli import file_suffix
    assert file_suffix('.jpg') == '.jpg'
    assert file_suffix('_leftImg8bit.png') == '_leftImg8bit.png'
    for bad in ('jpg', 'png.', ''):
        with pytest.raises(Exception, match='not a file suffix'):
            file_suffix(bad)


@pytest.mark.parametrize('content,words', [
    (b'x\n', ["starts with b'x\\n'"]), (b'', ['it is empty']),
    (b'\x89PNG\r\n', ['starts with']),
])
def test_a_file_that_cannot_be_a_checkpoint_is_named_as_such(world, tmp_path, content,
                                                             words):
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(content)
    refused(world['root'], 'inference.py',
            ['custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-'
             '128x128.py', ckpt, '--img-dir', world['imgs'], '--out-dir', tmp_path / 'o',
             '--no-progress'], 1, 'not a torch checkpoint', *words)


def test_an_output_file_name_ending_with_a_slash_is_named(world, tmp_path):
    refused(world['root'], 'make_submission.py',
            [world['probs'], '--format', 'handbone', '--out', f'{tmp_path}/s.csv/',
             '--no-progress'], 1, 'ends with a slash')


def test_a_folder_that_cannot_be_moved_aside_is_named_as_the_output(tmp_path, monkeypatch):
    """A read-only parent: the error names the output, not the hidden ``.old-`` name."""
    import errno
    import tempfile

    from mmseg_ext.io.staged_dir import replace_folders
    from mmseg_ext.utils.errors import OutputError
    target, new = tmp_path / 'train', tmp_path / 'new'
    os.makedirs(target)
    (target / 'keep.txt').write_text('old')
    os.makedirs(new)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system',
                      str(tmp_path / '.train.old-abc'))

    monkeypatch.setattr(tempfile, 'mkdtemp', read_only)
    with pytest.raises(OutputError) as err:
        replace_folders([(str(new), str(target))])
    assert str(err.value).startswith(f'{target}: cannot write the output (read-only')
    assert '.old-' not in str(err.value)
    assert (target / 'keep.txt').read_text() == 'old' and new.is_dir()


# ------------------------------------------------------------------ self-training
def test_a_self_training_run_that_finished_no_stage_does_not_block_the_corrected_one(
        tmp_path):
    """A checkpoint with the right bytes but another model; the corrected command
    (another --pixel-conf) is not refused as 'another run', and it fails on the same
    checkpoint again instead. (Since round N, a run refused before any stage finished
    in a work dir it made leaves nothing, run record included; since round V the teacher
    checkpoint is checked against the teacher config, as tools/test.py checks it, before
    the run record is written.)"""
    import torch

    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    data = tmp_path / 'hb'
    # 5 patients: the config's 5-fold validation split is listed before anything runs
    make_handbone_dataset(str(data), num_patients=5, images_per_patient=1, size=(32, 32),
                          num_test_patients=1, progress=False)
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': {'not.this.model': torch.zeros(1)}}, ckpt)
    cfg = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
    common = [cfg, cfg, '--unlabelled', data / 'test' / 'DCM', '--img-suffix', '.png',
              '--work-dir', tmp_path / 'st', '--teacher-checkpoint', ckpt, '--no-progress',
              '--cfg-options', f'train_dataloader.dataset.data_root={data}/train',
              f'val_dataloader.dataset.data_root={data}/train',
              f'test_dataloader.dataset.data_root={data}/train']
    first, lines1 = run_main('self_train.py', common)
    assert first == 1 and not osp.exists(tmp_path / 'st'), lines1
    os.makedirs(tmp_path / 'st')  # a work dir that stays: the record of the first run
    first, lines1 = run_main('self_train.py', common)
    assert first == 1 and os.listdir(tmp_path / 'st') == [], lines1  # refused up front
    assert lines1[-1].startswith(f'error: {ckpt}: does not fit the model of {cfg}'), lines1
    second, lines2 = run_main('self_train.py', common + ['--pixel-conf', '0.95'])
    errors = [line for line in lines2 if line.startswith('error:')]
    assert second == 1 and len(errors) == 1, lines2
    assert 'another self-training run' not in errors[0] and str(ckpt) in errors[0]


def test_self_training_checks_a_multilabel_pixel_conf_before_anything_runs(tmp_path):
    cfg = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
    imgs = tmp_path / 'u'
    os.makedirs(imgs)
    cv2.imwrite(str(imgs / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    refused(str(tmp_path), 'self_train.py',
            [cfg, cfg, '--unlabelled', imgs, '--img-suffix', '.png', '--work-dir',
             tmp_path / 'st', '--pixel-conf', '0.4', '--no-progress'], 2,
            '--pixel-conf', '(0.5, 1]')


def test_a_hand_bone_annotation_of_another_type_is_named_by_its_type(tmp_path):
    from mmseg_ext.io.hand_bone_json import read_masks
    from mmseg_ext.utils.errors import DataError
    path = tmp_path / 'a.json'
    path.write_text(json.dumps(dict(annotations=[dict(
        id='b', type='bbox', label='Trapezium', points=[[1, 1], [5, 5]])])))
    with pytest.raises(DataError, match="annotation type 'bbox'.*'poly_seg'"):
        read_masks(str(path), CLASSES, (8, 8))


def test_force_onto_an_empty_folder_publishes_and_hides_nothing(world, tmp_path):
    out = tmp_path / 'empty'
    os.makedirs(out)
    status, lines = run_main('ensemble.py', [world['probs'], world['probs2'], '--out-dir', out,
                                             '--force', '--no-progress'])
    assert status == 0, lines
    assert (out / 'index.json').is_file()
    assert not [n for n in os.listdir(tmp_path) if '.old-' in n]


@pytest.mark.parametrize('change,words', [
    (lambda d: d['images'][1].update(id=0), 'image id 0 appears twice'),
    (lambda d: d['images'][1].update(file_name='a/0.jpg'), 'have the same file_name a/0.jpg'),
    (lambda d: d['images'][1].update(file_name='../x.jpg'), 'leaves its folder'),
    (lambda d: d['annotations'][0].update(image_id=999), 'names image id 999'),
    (lambda d: d['annotations'][0].update(category_id=77), 'names category id 77'),
])
def test_kfold_coco_refuses_what_coco_to_masks_refuses(tmp_path, change, words):
    coco = dict(images=[dict(id=i, file_name=f'{"ab"[i % 2]}/{i}.jpg', height=8, width=8)
                        for i in range(6)],
                annotations=[dict(id=i, image_id=i, category_id=1 + i % 2, iscrowd=0,
                                  area=4, bbox=[1, 1, 2, 2],
                                  segmentation=[[1, 1, 3, 1, 3, 3]]) for i in range(6)],
                categories=[dict(id=1, name='a'), dict(id=2, name='b')])
    change(coco)
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(coco))
    refused(str(tmp_path), 'kfold.py', ['coco', path, '--out', tmp_path / 'k', '-k', '2',
                                        '--no-progress'], 1, str(path), words)
