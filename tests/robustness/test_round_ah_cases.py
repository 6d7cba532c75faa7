"""Round AH of bad inputs (issue 28): files a metric or a hook names in the config
(``DumpResults.out_file_path``, ``ProfilerHook.json_trace_path``), a checkpoint name
template leaving its folder, a training that diverges, and overrides of variables that
nothing reads."""
import os.path as osp

import pytest
from conftest import CONFIG, run_tool

from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError, OutputError

from .test_round_ag_cases import _train_cfg, one_error
from .test_round_x_cases import _options


@pytest.mark.parametrize('options', [
    {'val_evaluator': [dict(type='IoUMetric', iou_metrics=['mIoU']),
                       dict(type='DumpResults', out_file_path='{mine}')]},
    {'custom_hooks': [dict(type='ProfilerHook', json_trace_path='{mine}')]},
])
def test_a_file_a_metric_or_hook_names_is_never_written_over(tmp_path, shapes_root,
                                                             options):
    """AH-2, AH-3: a ``DumpResults`` metric wrote its pickle over the user's file named
    by ``out_file_path`` (train, test and every fold of cv), and a ``ProfilerHook``
    its trace over any file (the data's own label JSON). An existing file is refused
    before the run; a new name is taken; cv refuses either before its first fold."""
    mine = tmp_path / 'results.pkl'
    mine.write_bytes(b'mine')
    named = {k: [{a: (str(mine) if b == '{mine}' else b) for a, b in e.items()}
                 for e in v] for k, v in options.items()}
    with pytest.raises(OutputError, match='results.pkl: exists'):
        _train_cfg(shapes_root, tmp_path / 'w', named)
    assert mine.read_bytes() == b'mine'
    fresh = {k: [{a: (str(tmp_path / 'new.pkl') if b == '{mine}' else b)
                  for a, b in e.items()} for e in v] for k, v in options.items()}
    _train_cfg(shapes_root, tmp_path / 'w2', fresh)
    from mmseg_ext.workflows.cross_validation.workflow import load_cv_config
    with pytest.raises(ConfigError, match='fold trainings'):
        load_cv_config(CONFIG, fresh, tta=False)


@pytest.mark.parametrize('template', ['../mine/new_{}.pth', 'iter.pth', 'a_{}_{}.pth',
                                      'sub/iter_{}.pth', '.hidden_{}.pth'])
def test_a_checkpoint_name_template_stays_a_file_name(template):
    """AH-9: ``filename_tmpl='../mine/new_{}.pth'`` published checkpoints and their
    ownership records into a user's folder; a name clashing with a user file was
    refused only at the first save, after the training."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(ConfigError, match='filename_tmpl'):
        load_config(CONFIG, {'default_hooks.checkpoint.filename_tmpl': template})
    load_config(CONFIG, {'default_hooks.checkpoint.filename_tmpl': 'ckpt_{}.pth'})


@pytest.mark.parametrize('key', ['model.decode_head.loss_decode.loss_weight',
                                 'optim_wrapper.optimizer.lr'])
@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_a_setting_that_is_not_a_finite_number_is_refused(key, value):
    """AH-1: ``loss_weight=nan`` (or inf, or a scheduler factor) trained NaN weights and
    exited 0."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match='finite number'):
        load_config(CONFIG, {key: value})


def test_a_diverging_training_stops_before_saving_its_weights(tmp_path, shapes_root):
    """AH-1: ``optimizer.lr=1e30`` (finite) made the loss NaN; the run saved a NaN
    checkpoint and exited 0, and test.py scored it. It stops with one line naming the
    iteration, and no checkpoint of the diverged weights is written."""
    work = tmp_path / 'wd'
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                    *_options(shapes_root, 4, None, 'optim_wrapper.optimizer.lr=1e30'))
    line = one_error(proc)
    assert 'diverged at iteration' in line and 'loss' in line
    assert not list(work.glob('*.pth'))


@pytest.mark.parametrize('config, key, value', [
    (CONFIG, 'data_root', '/nonexistent'), (CONFIG, 'crop_size', (32, 32)),
    ('custom_configs/jsrt/unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py',
     'max_iters', 1)])
def test_an_override_of_a_variable_nothing_reads_is_refused(config, key, value):
    """AH-4: ``--cfg-options data_root=/nonexistent`` (or ``fold``, ``max_iters``,
    ``crop_size``) exited 0 with no effect: the file had copied the variable into other
    settings when it was read, and the dump showed the new value. Refused, naming
    settings that took its value where they can be found."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match=f'nothing reads {key}'):
        load_config(config, {key: value})
    with pytest.raises(InvalidArgumentError, match='not a setting'):
        load_config(CONFIG, {'max_itres': 2})
    assert osp.isfile(CONFIG)


def test_validating_on_training_images_is_said(tmp_path, shapes_root):
    """AH-5: training on fold 1 while validating on fold 0 of the same split files is
    fine; ``subset``/``fold`` settings that make the validation images training images
    passed without a word. One warning names the overlap."""
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'wd'),
                    *_options(shapes_root, 1, None,
                              'val_dataloader.dataset.data_prefix.img_path=images/train',
                              'val_dataloader.dataset.data_prefix.seg_map_path=labels/train'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '6 of the 6 validation images are also training images' in proc.stdout + \
        proc.stderr
    clean = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'wd2'),
                     *_options(shapes_root, 1))
    assert clean.returncode == 0 and 'also training images' not in clean.stdout + clean.stderr


def test_pseudo_labels_go_only_with_the_images_they_were_made_from(tmp_path):
    """AH-6: ``cv.py --pseudo-labels PL --pseudo-images OTHER`` trained every fold on
    other images (same names and sizes) with the polygons drawn for the test images,
    exit 0: the pseudo-label report kept only each image's path. It now keeps the
    image's SHA-256 from its probability file, and pairing it with another image is
    refused naming that image; the right images (or an older report) pass."""
    import json

    from mmseg_ext.io.pseudo_report import check_pseudo_images
    from mmseg_ext.utils.errors import DataError
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder

    from .test_round_ag_cases import _probs, _split
    test, other = _split(tmp_path / 'test', 10), _split(tmp_path / 'other', 200)
    pl = str(tmp_path / 'pl')
    pseudo_label_folder(_probs(tmp_path / 'p', test), pl, pixel_conf=0.51, progress=False)
    report = json.load(open(osp.join(pl, 'pseudo_labels.json')))
    from mmseg_ext.io.paths import file_sha256
    assert report['images'][0]['img_sha256'] == file_sha256(osp.join(test, 'a.png'))
    report_file = osp.join(pl, 'pseudo_labels.json')
    check_pseudo_images(report_file, test)
    with pytest.raises(DataError, match='other/a.png: not the image the pseudo-labels'):
        check_pseudo_images(report_file, other)
    old = str(tmp_path / 'pl_old')
    pseudo_label_folder(_probs(tmp_path / 'p_old', test, with_sha=False), old,
                        pixel_conf=0.51, progress=False)
    check_pseudo_images(osp.join(old, 'pseudo_labels.json'), other)  # nothing recorded


@pytest.mark.parametrize('given, option', [('min_area', 'keep_largest'),
                                           ('keep_largest', 'thresholds'),
                                           ('thresholds', 'min_area'),
                                           ('fold_thresholds', 'thresholds')])
def test_a_tuned_file_is_not_taken_for_another_setting(tmp_path, given, option):
    """AH-8: cv's ``tuned/min_area.json`` given as ``--keep-largest`` was read as
    component counts (and ``keep_largest.json`` as thresholds: all defaults), exit 0.
    A file a tool writes names its setting, and another option refuses it naming the
    file; the file's own option, a mapping of it, and a hand-written file pass."""
    import json

    from mmseg_ext.utils.errors import DataError
    from mmseg_ext.utils.per_class import per_class_document, per_class_option
    classes = ['Ulna', 'Radius']
    values = {'Ulna': 0.0, 'Radius': 1.0}
    path = tmp_path / f'{given}.json'
    path.write_text(json.dumps(per_class_document(values, given)))
    cast = float if option == 'thresholds' else int
    hi = 1.0 if option == 'thresholds' else float('inf')
    with pytest.raises(DataError, match=f"holds '{given}' values .*not {option}"):
        per_class_option(str(path), classes, option, cast, 0, hi)
    with pytest.raises(InvalidArgumentError, match=f"holds '{given}' values"):
        per_class_option(per_class_document(values, given), classes, option, cast, 0, hi)
    if given != 'fold_thresholds':
        own_cast = float if given == 'thresholds' else int
        assert per_class_option(str(path), classes, given, own_cast, 0, 1.0) == values
    plain = tmp_path / 'hand.json'
    plain.write_text(json.dumps(values))
    assert per_class_option(str(plain), classes, option, cast, 0, hi) == values


def test_a_patient_on_both_sides_of_a_training_is_said():
    """AH-7, beside cv's refusal of such split files: a training whose validation set
    holds another image of a training patient warns in one line; one patient name in
    two data roots is two patients."""
    from types import SimpleNamespace

    from conftest import logged_messages

    from mmseg_ext.engine.split_overlap import ValidationOverlapHook

    class Listed:
        def __init__(self, *paths):
            self.infos = [dict(img_path=p, patient=p.split('/')[-2]) for p in paths]

        def __len__(self):
            return len(self.infos)

        def get_data_info(self, i):
            return self.infos[i]

    def warnings(train, val):
        runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=train),
                                 val_loop=SimpleNamespace(
                                     dataloader=SimpleNamespace(dataset=val)))
        with logged_messages() as messages:
            ValidationOverlapHook().before_train(runner)
        return messages

    train = Listed('/d/DCM/ID001/a.png', '/d/DCM/ID002/a.png')
    said = warnings(train, Listed('/d/DCM/ID001/b.png', '/d/DCM/ID003/a.png'))
    assert len(said) == 1 and '1 patient(s) have images in both' in said[0] \
        and '/d/DCM/ID001/a.png and /d/DCM/ID001/b.png' in said[0]
    assert warnings(train, Listed('/e/DCM/ID001/b.png')) == []
    assert warnings(train, Listed('/d/DCM/ID003/a.png')) == []
