"""Pseudo-labelling the test set composes with cross-validation (issue 31):
``tools/cv.py`` on the teacher with ``--test-dir``, ``tools/pseudo_label.py`` on its test
ensemble, ``tools/cv.py --pseudo-labels`` again. Every fold then trains on its training
folds plus the accepted pseudo-labelled images and validates on its fold only.

Fold training is faked (a ready checkpoint copied, :mod:`robustness.cv_fakes`); the fold
configs, data sets, records and refusals are the real code.
"""
import json
import os
import os.path as osp

import pytest
from robustness.cv_fakes import HANDBONE, handbone_world, run_cv
from robustness.test_bad_inputs import run_main, snapshot


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    """Synthetic hand bones (4 patients + 1 test patient, 64x64), a finished 2-fold
    teacher run with a test ensemble, and pseudo-labels of that ensemble."""
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    root = tmp_path_factory.mktemp('cv_pseudo')
    w = handbone_world(root)
    s = run_cv(HANDBONE, root / 'teacher', w['ckpt'], w['options'], test_dir=w['test_dir'])
    pl = str(root / 'pl')
    # an untrained model is unsure everywhere: accept every image whatever its confidence
    pseudo_label_folder(s.files['test_ensemble'], pl, pixel_conf=0.9, max_uncertain=1.0,
                        min_mean_conf=0.0, progress=False)
    return dict(w, root=root, pl=pl)


def _images(path):
    return sum(1 for _, _, files in os.walk(path) for f in files if f.endswith('.png'))


def test_every_fold_trains_on_the_pseudo_labels_and_validates_on_its_fold_only(teacher):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.workflows.cross_validation.pool import build_dataset
    work = teacher['root'] / 'student'
    run_cv(HANDBONE, work, teacher['ckpt'], teacher['options'], test_dir=teacher['test_dir'],
           pseudo_labels=teacher['pl'])
    accepted = open(osp.join(teacher['pl'], 'accepted.txt')).read().split()
    num_test = _images(teacher['test_dir'])
    assert len(accepted) == num_test > 0
    pool = _images(osp.join(teacher['data'], 'train', 'DCM'))
    for k in (0, 1):
        cfg = load_config(str(work / 'configs' / f'fold{k}.py'))
        train = cfg.train_dataloader.dataset.to_dict()
        assert train['type'] == 'ConcatDataset'
        labelled, pseudo = train['datasets']
        assert labelled['ann_file'].endswith(f'train_fold{k}.txt')
        assert pseudo['data_root'] == osp.abspath(teacher['pl'])
        val = build_dataset(dict(cfg.val_dataloader.dataset.to_dict(), pipeline=[]))
        fold_train = build_dataset(dict(labelled, pipeline=[]))
        pseudo_set = build_dataset(dict(pseudo, pipeline=[]))
        assert len(fold_train) + len(val) == pool          # the pool, split
        assert len(pseudo_set) == num_test                  # plus every pseudo-label
        val_paths = {info['img_path'] for info in val.load_data_list()}
        assert not val_paths & {i['img_path'] for i in pseudo_set.load_data_list()}
        assert {osp.basename(i['seg_map_path']) for i in pseudo_set.load_data_list()} \
            == {osp.splitext(osp.basename(a))[0] + '.json' for a in accepted}


def test_changed_pseudo_labels_are_a_new_run(teacher, tmp_path):
    import shutil

    from mmseg_ext.utils.errors import OutputError
    pl = shutil.copytree(teacher['pl'], tmp_path / 'pl')
    work = tmp_path / 'student'
    kwargs = dict(test_dir=teacher['test_dir'], pseudo_labels=str(pl))
    run_cv(HANDBONE, work, teacher['ckpt'], teacher['options'], **kwargs)
    run_cv(HANDBONE, work, teacher['ckpt'], teacher['options'], **kwargs)  # resumes
    one = next(p for p in pl.rglob('*.json') if 'outputs_json' in str(p))
    doc = json.loads(one.read_text())
    doc['annotations'] = doc['annotations'][:1]
    one.write_text(json.dumps(doc))
    before = snapshot(str(work))
    with pytest.raises(OutputError, match=r'another cross-validation run .*extra_train'):
        run_cv(HANDBONE, work, teacher['ckpt'], teacher['options'], **kwargs)
    assert snapshot(str(work)) == before


@pytest.mark.parametrize('change,words', [
    ('classes', ['classes', 'are not the pool']),
    ('format', ['not a hand-bone JSON pseudo-label report']),
    ('none accepted', ['no image was accepted']),
])
def test_pseudo_labels_of_another_kind_are_refused(teacher, tmp_path, change, words):
    import shutil
    pl = shutil.copytree(teacher['pl'], tmp_path / 'pl')
    report_path = pl / 'pseudo_labels.json'
    report = json.loads(report_path.read_text())
    if change == 'classes':
        report['classes'] = list(reversed(report['classes']))
    elif change == 'format':
        report['format'] = 'label-png'
    else:
        for image in report['images']:
            image['accepted'] = False
    report_path.write_text(json.dumps(report))
    argv = [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w', '--test-dir',
            teacher['test_dir'], '--pseudo-labels', pl, '--no-progress', '--cfg-options',
            *[f'{k}={v}' for k, v in teacher['options'].items()]]
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', argv)
    assert status == 1 and len(lines) == 1 and lines[0].startswith('error:'), lines
    for word in words:
        assert word in lines[0], lines
    assert snapshot(str(tmp_path)) == before


def test_pseudo_images_without_pseudo_labels_is_a_usage_error(teacher, tmp_path):
    status, lines = run_main('cv.py', [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w',
                                       '--pseudo-images', teacher['test_dir']])
    assert status == 2 and '--pseudo-labels' in lines[-1], lines
    status, lines = run_main('cv.py', [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w',
                                       '--pseudo-labels', teacher['pl']])
    assert status == 2 and '--test-dir' in lines[-1], lines
    assert not (tmp_path / 'w').exists()


def _cv_argv(teacher, tmp_path, pl, *extra):
    return [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w', '--pseudo-labels', pl,
            *extra, '--no-progress', '--cfg-options',
            *[f'{k}={v}' for k, v in teacher['options'].items()]]


@pytest.mark.parametrize('edit,words', [
    (lambda text: text + text, ['accepted.txt:', 'is the image of line 1']),
    (lambda text: '', ['accepted.txt: the image list is empty']),
])
def test_an_accepted_list_naming_an_image_twice_or_none_is_refused(teacher, tmp_path, edit,
                                                                   words):
    import shutil
    pl = shutil.copytree(teacher['pl'], tmp_path / 'pl')
    accepted = pl / 'accepted.txt'
    accepted.write_text(edit(accepted.read_text()))
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', _cv_argv(teacher, tmp_path, pl, '--test-dir',
                                               teacher['test_dir']))
    assert status == 1 and len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines
    assert snapshot(str(tmp_path)) == before


def test_pseudo_labels_of_pool_images_are_refused(teacher, tmp_path):
    """Pseudo-labels of the pool's own images (its out-of-fold predictions): each fold
    would train on pseudo-labels of the images it validates on."""
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    pl = str(tmp_path / 'pl_oof')
    pseudo_label_folder(str(teacher['root'] / 'teacher' / 'oof_probs'), pl, pixel_conf=0.9,
                        max_uncertain=1.0, progress=False)
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', _cv_argv(teacher, tmp_path, pl, '--pseudo-images',
                                               osp.join(teacher['data'], 'train', 'DCM')))
    assert status == 1 and len(lines) == 1, lines
    assert 'a pseudo-labelled image is the pool image' in lines[0], lines
    assert snapshot(str(tmp_path)) == before


def test_pseudo_labels_of_re_saved_pool_images_are_refused(teacher, tmp_path):
    """Round AL (AL-6): the pool's images re-saved (the same pixels in other bytes) as
    ``--pseudo-images`` were not seen as the pool's: the byte comparison missed them."""
    import cv2

    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    pl = str(tmp_path / 'pl_oof')
    pseudo_label_folder(str(teacher['root'] / 'teacher' / 'oof_probs'), pl, pixel_conf=0.9,
                        max_uncertain=1.0, progress=False)
    source = osp.join(teacher['data'], 'train', 'DCM')
    resaved = tmp_path / 'resaved'
    for folder, _, files in os.walk(source):
        for name in files:
            image = cv2.imread(osp.join(folder, name), cv2.IMREAD_UNCHANGED)
            out = resaved / osp.relpath(folder, source) / name
            out.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(out), image, [cv2.IMWRITE_PNG_COMPRESSION, 0])
            assert out.read_bytes() != open(osp.join(folder, name), 'rb').read()
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', _cv_argv(teacher, tmp_path, pl, '--pseudo-images',
                                               str(resaved)))
    assert status == 1 and len(lines) == 1, lines
    assert 'a pseudo-labelled image is the pool image' in lines[0], lines
    assert 'the same pixels' in lines[0], lines
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize('through', ['folder', 'link'])
def test_a_pool_of_pseudo_labels_is_refused_before_any_fold(teacher, tmp_path, through):
    """Round AL (AL-7): ``cv.py`` on a config whose labelled pool is a pseudo-label
    folder trained and predicted every fold, then refused the pool at the OOF tuning.
    Refused now before the first fold, also when the labels are reached through a link
    (their real path lies in the pseudo-label folder)."""
    pl = teacher['pl']
    if through == 'link':
        root = tmp_path / 'labels'
        root.mkdir()
        (root / 'outputs_json').symlink_to(osp.join(pl, 'outputs_json'))
        (root / 'accepted.txt').write_text(open(osp.join(pl, 'accepted.txt')).read())
        pl = str(root)
    options = dict(teacher['options'])
    for split in ('train', 'val'):
        options[f'{split}_dataloader.dataset.data_root'] = pl
        options[f'{split}_dataloader.dataset.ann_file'] = 'accepted.txt'
        options[f'{split}_dataloader.dataset.data_prefix.img_path'] = teacher['test_dir']
        options[f'{split}_dataloader.dataset.data_prefix.seg_map_path'] = 'outputs_json'
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w',
                                       '--no-progress', '--cfg-options',
                                       *[f'{k}={v}' for k, v in options.items()]])
    assert status == 1 and len(lines) == 1, lines
    assert 'lies in the pseudo-label folder' in lines[0], lines
    assert "a model's predictions, not ground truth" in lines[0], lines
    assert not (tmp_path / 'w').exists()
    assert snapshot(str(tmp_path)) == before


def test_a_pool_without_polygons_is_refused_before_any_fold(teacher, tmp_path):
    """A hand-bone pool whose data set reads no polygons (``data_prefix`` given without
    ``seg_map_path``) has nothing to score the folds against: one line, before any fold."""
    options = dict(teacher['options'])
    for split in ('train', 'val'):
        options[f'{split}_dataloader.dataset.data_prefix.img_path'] = 'DCM'
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w',
                                       '--no-progress', '--cfg-options',
                                       *[f'{k}={v}' for k, v in options.items()]])
    assert status == 1 and len(lines) == 1, lines
    assert 'without polygons' in lines[0] and 'label folder not set' in lines[0], lines
    assert not (tmp_path / 'w').exists()
    assert snapshot(str(tmp_path)) == before


def test_pseudo_labels_of_inference_on_a_data_root_pair_with_its_images(teacher, tmp_path):
    """Round AK (AK-11): inference on a hand-bone data root names the images
    ``DCM/ID.../x.png``; pseudo_label.py wrote those names into ``accepted.txt`` but the
    labels under ``outputs_json/ID.../x.json``, so cv refused the folder whichever image
    folder it was given. ``accepted.txt`` now names each image as its label is named, and
    cv reads a hand-bone root's images from its ``DCM/``; swapped images are still
    refused by content."""
    import shutil

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.workflows.cross_validation.pool import (
        add_pseudo_labels,
        build_dataset,
        read_pool,
    )
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    root = osp.dirname(teacher['test_dir'])
    probs = tmp_path / 'probs_root'
    status, lines = run_main('inference.py', [
        HANDBONE, teacher['ckpt'], '--img-dir', root, '--out-dir', probs, '--no-progress',
        '--cfg-options', *[f'{k}={v}' for k, v in teacher['options'].items()]])
    assert status in (0, None), lines
    pl = str(tmp_path / 'pl_root')
    pseudo_label_folder(str(probs), pl, pixel_conf=0.9, max_uncertain=1.0,
                        min_mean_conf=0.0, progress=False)
    accepted = open(osp.join(pl, 'accepted.txt')).read().split()
    assert accepted and not any(a.startswith('DCM/') for a in accepted)
    for a in accepted:  # each line names its image under DCM/ and its label alike
        assert osp.isfile(osp.join(root, 'DCM', a))
        assert osp.isfile(osp.join(pl, 'outputs_json', osp.splitext(a)[0] + '.json'))
    cfg = load_config(HANDBONE, teacher['options'])
    for images in (root, osp.join(root, 'DCM')):
        pool = read_pool(cfg, HANDBONE, progress=False)
        add_pseudo_labels(pool, pl, images)
        infos = build_dataset(dict(pool.extra[-1], pipeline=[])).load_data_list()
        assert len(infos) == len(accepted)
        for info in infos:
            rel = osp.relpath(info['img_path'], osp.join(root, 'DCM'))
            assert info['seg_map_path'] == osp.join(osp.abspath(pl), 'outputs_json',
                                                    osp.splitext(rel)[0] + '.json')
    swapped = shutil.copytree(root, tmp_path / 'swapped')
    a, b = (swapped / 'DCM' / x for x in accepted[:2])
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    status, lines = run_main('cv.py', _cv_argv(teacher, tmp_path, pl, '--pseudo-images',
                                               swapped))
    assert status == 1 and len(lines) == 1, lines
    assert 'not the image the pseudo-labels of' in lines[0], lines


def test_test_images_that_are_pool_images_are_named_in_one_warning(teacher):
    """Round AN (observed): ``cv.py --test-dir`` pointed at the training images ran
    without a word, while self_train warns in the matching case. One warning line now;
    real test images give none."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.workflows.cross_validation.pool import read_pool
    from mmseg_ext.workflows.cross_validation.testset import read_test_inputs
    cfg = load_config(HANDBONE, teacher['options'])
    pool = read_pool(cfg, HANDBONE, progress=False)
    for test_dir, warned in ((osp.join(teacher['data'], 'train', 'DCM'), True),
                             (teacher['test_dir'], False)):
        lines = []
        read_test_inputs(cfg, HANDBONE, pool, test_dir, None, None, None, lines.append)
        hits = [m for m in lines if 'are images of the labelled pool' in m]
        assert len(hits) == int(warned), lines


def test_test_images_of_one_file_name_are_refused_before_any_fold(teacher, tmp_path):
    """Round AO (AO-5): two test images with one base name (which a hand-bone submission
    cannot tell apart) were refused only after every fold had trained and predicted the
    test set; the same command then met its own test record. Refused before any fold."""
    import shutil
    test = tmp_path / 'tdup'
    shutil.copytree(teacher['test_dir'], test)
    patient = sorted(os.listdir(test))[0]
    name = sorted(os.listdir(test / patient))[0]
    (test / 'ID099').mkdir()
    shutil.copy(test / patient / name, test / 'ID099' / name)
    before = snapshot(str(tmp_path))
    status, lines = run_main('cv.py', [HANDBONE, '-k', '2', '--work-dir', tmp_path / 'w',
                                       '--test-dir', test, '--no-progress', '--cfg-options',
                                       *[f'{k}={v}' for k, v in teacher['options'].items()]])
    assert status == 1 and len(lines) == 1, lines
    assert f'two images are named {name}' in lines[0], lines
    assert snapshot(str(tmp_path)) == before
