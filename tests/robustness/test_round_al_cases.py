"""Round AL of bad inputs (issue 28): a multi-class ensemble's own output refused by
its readers, and validation sets and ground truth that hold pseudo-labels."""
import numpy as np


def _softmax_folder(root, seed, classes):
    """A multi-class uint8 probability folder of 3 images (random softmax maps)."""
    from mmseg_ext.io.probs import ProbFolderWriter
    rng = np.random.default_rng(seed)
    with ProbFolderWriter(str(root), classes, 'multi-class') as writer:
        for i in range(3):
            logits = rng.normal(size=(len(classes), 32, 40)) * 2
            e = np.exp(logits - logits.max(0))
            writer.write((e / e.sum(0)).astype(np.float32), f'{i}.png', (32, 40))
        writer.commit()
    return str(root)


def test_a_multi_class_ensemble_is_readable(tmp_path):
    """AL-8: ``ensemble.py`` of two multi-class uint8 folders wrote files every reader
    refused as "sum to 1.0118 ... not a softmax output": the average of two stored
    folders carries two roundings, the reader allows one. The writer divides a softmax
    output (or such an average) by its class sum before storing it."""
    from mmseg_ext.ensembling.ensemble import soft_vote
    from mmseg_ext.io.probs import ProbFolder
    classes = ['a', 'b', 'c', 'd', 'e', 'f']
    one = _softmax_folder(tmp_path / 'one', 0, classes)
    two = _softmax_folder(tmp_path / 'two', 1, classes)
    for dtype in ('uint8', 'float16'):
        out = str(tmp_path / f'ens_{dtype}')
        soft_vote([one, two], out, dtype=dtype, progress=False)
        folder = ProbFolder(out)
        for key in folder.keys():
            probs, _ = folder.read(key)  # checks the class sums
            assert np.abs(np.asarray(probs, np.float64).sum(0)
                          / (255.0 if dtype == 'uint8' else 1.0) - 1).max() < 0.03


def test_ground_truth_holding_pseudo_labels_is_refused(tmp_path):
    """AL-1: a ``--gt`` folder holding a pseudo-label folder one level down was taken as
    ground truth (the model scored against its own output: 100%)."""
    import os.path as osp

    import pytest

    from mmseg_ext.io.ground_truth import GroundTruth
    from mmseg_ext.utils.errors import DataError

    from .test_round_aj_cases import _label_png_pseudo_labels
    _, pl = _label_png_pseudo_labels(tmp_path)
    with pytest.raises(DataError, match='holds the pseudo-label folder .*pl'):
        GroundTruth(osp.dirname(pl), ['sky', 'road'])


def test_validation_and_test_sets_are_checked_too(tmp_path):
    """AL-3: only the training set's pseudo-labels were checked; a validation or test
    set reading a pseudo-label folder with other images scored silently (mIoU 46.77).
    The hook checks each loader's data set before its loop, once per run."""
    from types import SimpleNamespace

    import pytest

    from mmseg_ext.training.pseudo_label_images import PseudoLabelImageHook
    from mmseg_ext.utils.errors import DataError

    from .test_round_aj_cases import _folder_dataset, _label_png_pseudo_labels
    images, pl = _label_png_pseudo_labels(tmp_path)
    import os.path as osp
    wrong = SimpleNamespace(dataset=_folder_dataset(osp.join(images, 'train'),
                                                    osp.join(pl, 'val')))
    right = SimpleNamespace(dataset=_folder_dataset(osp.join(images, 'val'),
                                                    osp.join(pl, 'val')))
    for stage in ('val', 'test'):
        hook = PseudoLabelImageHook()
        with pytest.raises(DataError, match='not the image the pseudo-label'):
            getattr(hook, f'before_{stage}')(SimpleNamespace(**{f'{stage}_dataloader': wrong}))
        getattr(PseudoLabelImageHook(), f'before_{stage}')(
            SimpleNamespace(**{f'{stage}_dataloader': right}))


def _re_save(src, dst):
    """``src`` written again at another PNG compression: other bytes, the same pixels."""
    import cv2
    image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    level = 9 if cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes() \
        != open(src, 'rb').read() else 0
    assert cv2.imwrite(str(dst), image, [cv2.IMWRITE_PNG_COMPRESSION, level])
    assert open(src, 'rb').read() != open(dst, 'rb').read()


def test_re_saved_training_images_are_not_unlabelled_images(tmp_path):
    """AL-6: a training image re-saved (the same pixels in other bytes) as an
    "unlabelled" image passed ``self_train.py``: the byte comparison missed it."""
    from .test_round_l_cases import refused_unlabelled_copy
    last, train = refused_unlabelled_copy(tmp_path, _re_save)
    assert f'images/train/{train}' in last


def test_re_saved_training_images_are_not_held_back(tmp_path):
    """AL-6 in the held-back benchmark: the training root with its X-rays re-saved gave
    a "held-back" score measured on the training images."""
    import os
    import shutil

    from conftest import run_tool
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '2', '--size', '64x64')
    assert proc.returncode == 0, proc.stderr[-2000:]
    held = shutil.copytree(data / 'train', tmp_path / 'held')
    for folder, _, files in os.walk(held / 'DCM'):
        for name in files:
            _re_save(os.path.join(folder, name), os.path.join(folder, name + '.tmp.png'))
            os.replace(os.path.join(folder, name + '.tmp.png'), os.path.join(folder, name))
    config = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
    proc = run_tool('tools/benchmark/bench_heldback.py', config, '--train',
                    str(data / 'train'), '--heldback', str(held), '--work-dir',
                    str(tmp_path / 'w'), '--iters', '2', '--no-progress')
    lines = [line for line in (proc.stdout + proc.stderr).splitlines()
             if line.startswith('error:')]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert 'a held-back image is the training image' in lines[0]
    assert not (tmp_path / 'w').exists()


def test_the_heldback_benchmark_refuses_unscorable_inputs_before_training(tmp_path):
    """AL-4, AL-10: a held-back image without its polygons, and a ``--work-dir`` inside
    the held-back images, were found after training (a traceback, the run's folder left
    in the user's images). Each is one error line before anything trains or is written."""
    import os
    import shutil

    from conftest import run_tool
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '3', '--size', '64x64')
    assert proc.returncode == 0, proc.stderr[-2000:]
    train = data / 'train'
    held = tmp_path / 'held'
    patient = sorted(os.listdir(train / 'DCM'))[-1]
    for sub in ('DCM', 'outputs_json'):
        (held / sub).mkdir(parents=True)
        shutil.move(str(train / sub / patient), str(held / sub / patient))
    config = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'

    def run(work, heldback=held):
        proc = run_tool('tools/benchmark/bench_heldback.py', config, '--train', str(train),
                        '--heldback', str(heldback), '--work-dir', str(work), '--iters',
                        '2', '--no-progress')
        lines = [line for line in (proc.stdout + proc.stderr).splitlines()
                 if line.startswith('error:')]
        assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
        assert 'Traceback' not in proc.stderr
        return lines[0]

    inside = held / 'DCM' / patient / 'bench'
    line = run(inside)
    assert line.startswith('error: --work-dir:') and str(held) in line, line
    assert not inside.exists()

    first = sorted((held / 'outputs_json' / patient).iterdir())[0]
    first.unlink()
    line = run(tmp_path / 'w')
    assert 'a held-back image without polygons' in line and first.stem in line, line
    assert not (tmp_path / 'w').exists()


_SIGNAL_HOOK = '''
import os

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class StopSignalBeforeTrainHook(Hook):
    """Sends the process a stop signal once the runner is built, before an iteration."""

    def __init__(self, signum):
        self.signum = signum

    def before_train(self, runner):
        os.kill(os.getpid(), self.signum)
'''


def test_a_run_stopped_before_its_first_iteration_leaves_no_work_dir(tmp_path,
                                                                      shapes_root):
    """AK-9: ``train.py`` stopped by SIGINT or SIGTERM after the runner was built but
    before the first iteration left the new work dir (lock, owner record, config dump,
    a log folder of nothing trained). It goes now, as after a refusal at that point; a
    work dir the user had keeps only its own files. The signal is a real one, sent by a
    hook in ``before_train``."""
    import os
    import signal

    from conftest import REPO, run_tool
    (tmp_path / 'stop_signal_hook.py').write_text(_SIGNAL_HOOK)
    for signum in (signal.SIGINT, signal.SIGTERM):
        config = tmp_path / f'stop{signum}.py'
        config.write_text(
            f"_base_ = '{REPO}/custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'\n"
            "custom_imports = dict(imports=['mmseg_ext', 'stop_signal_hook'], "
            "allow_failed_imports=False)\n"
            f"custom_hooks = [dict(type='StopSignalBeforeTrainHook', signum={int(signum)})]\n"
            f"data_root = '{shapes_root}'\n"
            "train_dataloader = dict(dataset=dict(data_root=data_root))\n"
            "val_dataloader = dict(dataset=dict(data_root=data_root))\n"
            "test_dataloader = dict(dataset=dict(data_root=data_root))\n")
        work = tmp_path / f'new{signum}' / 'w'
        mine = tmp_path / f'mine{signum}'
        mine.mkdir()
        (mine / 'notes.txt').write_text('mine\n')
        for target in (work, mine):
            proc = run_tool('tools/train.py', str(config), '--work-dir', str(target),
                            '--cfg-options', 'train_cfg.max_iters=2',
                            env={'PYTHONPATH': str(tmp_path)}, subprocess_run=True)
            assert proc.returncode == 128 + signum, proc.stderr[-2000:]
            assert proc.stderr.strip().splitlines()[-1] == 'error: interrupted'
        assert not (tmp_path / f'new{signum}').exists()
        from mmseg_ext.io.work_dir_lock import LOCK
        assert sorted(os.listdir(mine)) == sorted(['notes.txt', LOCK])
        assert (mine / 'notes.txt').read_text() == 'mine\n'
