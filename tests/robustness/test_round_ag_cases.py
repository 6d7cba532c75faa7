"""Round AG of bad inputs (issue 28): folders a config names for a run's files outside
its work dir (a metric's ``output_dir``, a vis backend's ``save_dir``, the logger's and
the checkpoint hook's ``out_dir``), starting weights in the checkpoint folder, and a
work dir's pointer hard-linked into a snapshot."""
import hashlib
import os
import os.path as osp

import pytest
from conftest import CONFIG, run_tool

from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError, OutputError

from .test_round_x_cases import _options

CAMVID = 'custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py'


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    found = {}
    for top, _, files in os.walk(folder):
        for name in files:
            path = osp.join(top, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def one_error(proc):
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    return errors[0]


def _train_cfg(shapes_root, work, options):
    from mmseg_ext.training.runner import train_config
    base = {'train_dataloader.dataset.data_root': shapes_root,
            'val_dataloader.dataset.data_root': shapes_root}
    return train_config(CONFIG, work_dir=str(work), cfg_options={**base, **options})


def test_a_validation_metric_never_writes_into_a_folder_with_files(tmp_path, shapes_root):
    """AG-1: ``val_evaluator.output_dir`` naming the data's label folder replaced every
    validation label with a prediction (exit 0); a folder of the user's the same way.
    A folder with files is refused before the run; a new one is taken."""
    labels = osp.join(shapes_root, 'labels', 'val')
    assert os.listdir(labels)
    before = snapshot(shapes_root)
    with pytest.raises(OutputError, match='val_evaluator.output_dir'):
        _train_cfg(shapes_root, tmp_path / 'w', {'val_evaluator.output_dir': labels})
    assert snapshot(shapes_root) == before
    _train_cfg(shapes_root, tmp_path / 'w2', {'val_evaluator.output_dir':
                                              str(tmp_path / 'new')})


def test_the_logger_copies_its_files_only_into_a_new_folder(tmp_path, shapes_root):
    """AG-4: ``default_hooks.logger.out_dir=home`` copied the run's ``config.py`` and
    ``scalars.json`` over the user's ``home/<work dir name>/vis_data`` files."""
    mine = tmp_path / 'home' / 'proj' / 'vis_data'
    mine.mkdir(parents=True)
    (mine / 'config.py').write_text('mine')
    with pytest.raises(OutputError, match='default_hooks.logger.out_dir'):
        _train_cfg(shapes_root, tmp_path / 'runs' / 'proj',
                   {'default_hooks.logger.out_dir': str(tmp_path / 'home')})
    assert (mine / 'config.py').read_text() == 'mine'


@pytest.mark.parametrize('setting', ['visualizer.vis_backends.0.save_dir',
                                     'visualizer.save_dir'])
def test_a_config_naming_the_visualizers_folder_is_refused(setting):
    """AG-3: ``visualizer.vis_backends.0.save_dir=.`` dumped the merged config over the
    input config (``./config.py``) and appended to a user's ``scalars.json``."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(ConfigError, match=setting.replace('.', r'\.')):
        load_config(CONFIG, {setting: '.'})


def test_workflows_of_several_trainings_refuse_a_shared_output_folder(tmp_path):
    """AG-13, AG-1 through cv: ``default_hooks.checkpoint.out_dir`` was refused only
    after fold 0 had trained (its checkpoint left outside the work dir); a metric's
    ``output_dir`` was written by every fold. Both are refused before any training."""
    from mmseg_ext.workflows.cross_validation.workflow import load_cv_config
    demo = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
    for key in ('default_hooks.checkpoint.out_dir', 'default_hooks.logger.out_dir',
                'val_evaluator.output_dir'):
        with pytest.raises(ConfigError, match=key.replace('.', r'\.') + '.*fold'):
            load_cv_config(demo, {key: str(tmp_path / 'ck')}, tta=False)
    assert not (tmp_path / 'ck').exists()


def test_test_out_with_a_list_evaluator(tmp_path):
    """AG-11, AG-2: ``--out`` with a list ``test_evaluator`` was a TypeError; a list
    entry's own ``output_dir`` was never checked. The one metric of the list that takes
    an ``output_dir`` writes ``--out`` (CamVid's IoUMetric beside its per-image metric);
    two such metrics are refused; every entry's folder is checked like ``--out``."""
    from mmseg_ext.training.runner import _output_folders, test_config
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'x')
    cfg = test_config(CAMVID, str(ckpt), work_dir=str(tmp_path / 'w'),
                      out=str(tmp_path / 'out'))
    assert [m.get('output_dir') for m in cfg.test_evaluator] == [str(tmp_path / 'out'),
                                                                 None]
    two = {'test_evaluator': [dict(type='IoUMetric'), dict(type='IoUMetric')]}
    with pytest.raises(InvalidArgumentError, match='2 metrics'):
        test_config(CAMVID, str(ckpt), work_dir=str(tmp_path / 'w'),
                    out=str(tmp_path / 'out'), cfg_options=two)
    listed = {'test_evaluator': [dict(type='PerImageIoUMetric'),
                                 dict(type='IoUMetric', output_dir=f'{tmp_path}/a')]}
    cfg = test_config(CAMVID, str(ckpt), work_dir=str(tmp_path / 'w'), cfg_options=listed)
    assert [f for f, _, _ in _output_folders(cfg)] == [f'{tmp_path}/a']


def test_starting_weights_in_the_checkpoint_folder_are_kept(tmp_path, shapes_root):
    """AG-5: a second training in ``wd`` with ``load_from=wd/iter_1.pth`` replaced its
    own starting weights with its new ``iter_1.pth``; refused before it trains, through
    a symbolic link to the work dir too. Weights outside the folder are taken."""
    work = tmp_path / 'wd'
    first = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                     *_options(shapes_root, 1))
    assert first.returncode == 0, first.stderr[-2000:]
    weights = work / 'iter_1.pth'
    before = weights.read_bytes()
    os.symlink(work, tmp_path / 'link')
    for named in (weights, tmp_path / 'link' / 'iter_1.pth'):
        again = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                         *_options(shapes_root, 1, None, f'load_from={named}'))
        assert 'starting weights' in one_error(again)
        assert weights.read_bytes() == before


def test_a_hard_linked_pointer_is_not_written_through(tmp_path, shapes_root):
    """AG-14: after ``cp -al wd snap``, a new training in ``wd`` rewrote the hard-linked
    ``last_checkpoint``, so the snapshot's pointer named ``wd``'s new checkpoint."""
    from mmseg_ext.training.tool_runner import check_checkpoint_pointer
    work = tmp_path / 'wd'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    os.link(work / 'last_checkpoint', tmp_path / 'snapshot_pointer')
    with pytest.raises(OutputError, match='hard-linked'):
        check_checkpoint_pointer(str(work), resume=False)


def test_a_copied_work_dir_is_named_as_a_copy(tmp_path):
    """AG-15: resuming in a ``cp -a`` copy of a work dir was refused (rightly) with the
    advice for two runs sharing an ``out_dir``; it names the copy now."""
    from mmengine.config import Config

    from mmseg_ext.io.checkpoint_backend import AtomicLocalBackend
    from mmseg_ext.training.tool_runner import check_checkpoint_folder
    copy = tmp_path / 'copy'
    copy.mkdir()
    AtomicLocalBackend(run=str(tmp_path / 'original')).put(b'w', str(copy / 'iter_2.pth'))
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', backend_args=dict(backend='atomic_local',
                                                 run=osp.realpath(copy))))))
    with pytest.raises(OutputError, match='copied or moved') as info:
        check_checkpoint_folder(cfg, str(copy))
    assert 'out_dir' not in str(info.value)


@pytest.mark.parametrize('options, named', [
    ({'default_hooks.checkpoint.intervall': 1}, "no argument 'intervall'"),
    ({'default_hooks.checkpoint.save_bestt': 'mIoU'}, "no argument 'save_bestt'"),
    ({'default_hooks.checkpoint.max_keep_ckpts': 0.5}, 'whole number'),
    ({'log_level': 'DEBUGG'}, 'log_level'),
    ({'log_level': 'debug'}, 'log_level'),          # mmengine looks the name up as is
    ({'default_scope': 'mmdet'}, 'default_scope'),  # not installed here
])
def test_settings_that_failed_only_when_used_are_refused_at_load(options, named):
    """AG-9, AG-10: a misspelt checkpoint-hook argument was a warning, and the training
    ran to its first save to die in ``Runner.save_checkpoint`` (the hook passes its
    ``**kwargs`` there); ``max_keep_ckpts=0.5`` failed when it trimmed; a misspelt
    ``log_level`` or an unknown ``default_scope`` was a ``KeyError`` traceback."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match=named):
        load_config(CONFIG, options)


@pytest.mark.parametrize('options', [{'default_hooks.checkpoint.max_keep_ckpts': 2},
                                     {'log_level': 'DEBUG'}, {'log_level': 10},
                                     {'default_scope': 'mmseg'}])
def test_the_same_settings_load_when_right(options):
    from mmseg_ext.config.loading import load_config
    load_config(CONFIG, options)


def test_a_benchmark_never_writes_into_a_folder_with_files(tmp_path):
    """AG-12: ``bench_ensemble.py --work-dir mine`` rewrote a user's
    ``mine/model0_10/index.json`` with a plain write; a work dir given to a benchmark
    must be new or empty."""
    mine = tmp_path / 'mine' / 'model0_10'
    mine.mkdir(parents=True)
    (mine / 'index.json').write_text('mine')
    proc = run_tool('tools/benchmark/bench_ensemble.py', '--work-dir',
                    str(tmp_path / 'mine'), '--size', '32', '--repeat', '1')
    assert proc.returncode != 0 and 'not an empty folder' in proc.stderr
    assert (mine / 'index.json').read_text() == 'mine'


def test_an_image_replaced_by_one_of_the_same_size_and_time_changes_the_stamp(tmp_path):
    """AG-6: test images replaced by others of the same byte size with their times kept
    (``cp -p``) left cv's stamp unchanged, and the stale predictions were reused."""
    from mmseg_ext.io.ownership import files_stamp
    image = tmp_path / 'a.bmp'
    image.write_bytes(b'BM' + bytes(100))
    before = files_stamp(str(tmp_path), ['a.bmp'])
    st = os.stat(image)
    image.write_bytes(b'BM' + bytes(99) + b'\x01')
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(image).st_size == st.st_size
    assert files_stamp(str(tmp_path), ['a.bmp']) != before


def _split(root, pixel):
    """One 8x10 grey image ``a.png`` of value ``pixel`` under ``root`` (a split)."""
    import cv2
    import numpy as np
    os.makedirs(root, exist_ok=True)
    cv2.imwrite(osp.join(root, 'a.png'), np.full((8, 10), pixel, np.uint8))
    return str(root)


def _probs(out_dir, img_dir, value=0.8, with_sha=True):
    """A multi-label probability folder for ``img_dir/a.png``, as inference writes it
    (the image's SHA-256 recorded unless ``with_sha`` is False: an older file)."""
    import numpy as np

    from mmseg_ext.io.paths import file_sha256
    from mmseg_ext.io.probs import ProbFolderWriter
    digest = file_sha256(osp.join(img_dir, 'a.png')) if with_sha else None
    with ProbFolderWriter(str(out_dir), ['Ulna', 'Radius'], 'multi-label',
                          background=False) as writer:
        writer.write(np.full((2, 8, 10), value, np.float32), 'a.png', (8, 10),
                     img_sha256=digest)
        writer.commit()
    return str(out_dir)


def test_predictions_are_used_only_with_the_images_they_were_made_from(tmp_path):
    """AG-7: ``visualize overlay --img-dir <other split>`` (same names and sizes) drew
    the predictions over the wrong images, exit 0; a submission with ``--img-dir`` of
    another split and an ensemble of folders predicted from different images passed
    the same way. Probability files record the image's SHA-256: each is refused
    naming the image; the right images (or an older file without the record) pass."""
    from mmseg_ext.ensembling.ensemble import soft_vote
    from mmseg_ext.io.prob_meta import ProbFileError
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.workflows.visualize import visualize_folder
    val, test = _split(tmp_path / 'val', 10), _split(tmp_path / 'test', 200)
    probs = _probs(tmp_path / 'p_val', val)
    for call in (lambda out: visualize_folder(test, probs, out, progress=False),
                 lambda out: make_submission(probs, 'handbone', out, img_dir=test,
                                             progress=False)):
        with pytest.raises(ProbFileError, match='not the image .* was predicted from'):
            call(str(tmp_path / 'out'))
        assert not (tmp_path / 'out').exists()
    visualize_folder(val, probs, str(tmp_path / 'drawn'), progress=False)
    make_submission(probs, 'handbone', str(tmp_path / 'sub.csv'), img_dir=val,
                    progress=False)
    older = _probs(tmp_path / 'p_old', val, with_sha=False)
    visualize_folder(test, older, str(tmp_path / 'drawn_old'), progress=False)
    other = _probs(tmp_path / 'p_test', test, value=0.6)
    with pytest.raises(ProbFileError, match='predicted different images'):
        soft_vote([probs, other], str(tmp_path / 'ens'), progress=False)
    assert not (tmp_path / 'ens').exists()
    soft_vote([probs, _probs(tmp_path / 'p_val2', val, value=0.6)],
              str(tmp_path / 'ens2'), progress=False)
    from mmseg_ext.io.paths import file_sha256
    from mmseg_ext.io.prob_file import read_meta
    assert read_meta(str(tmp_path / 'ens2' / 'a.npz')).img_sha256 == \
        file_sha256(osp.join(val, 'a.png'))


def test_inference_records_the_image_it_predicted(tmp_path):
    """What the AG-7 checks compare: ``infer_folder`` writes the SHA-256 of each image
    file beside its probabilities."""
    import numpy as np

    from mmseg_ext.inference.predictor import infer_folder
    from mmseg_ext.io.paths import file_sha256
    from mmseg_ext.io.prob_file import read_meta

    class Fixed:
        classes, task = ('Ulna', 'Radius'), 'multi-label'

        def predict(self, path, out_size):
            return np.full((2, 8, 10), 0.7, np.float32), (8, 10)

    val = _split(tmp_path / 'val', 10)
    infer_folder(Fixed(), val, str(tmp_path / 'p'), progress=False)
    meta = read_meta(str(tmp_path / 'p' / 'a.npz'))
    assert meta.img_sha256 == file_sha256(osp.join(val, 'a.png'))
