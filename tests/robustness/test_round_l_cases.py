"""Round L of hostile inputs (issue 28), each case by its class:

* bookkeeping read before the runner: ``train.py --resume`` with a ``last_checkpoint``
  that is a FIFO hung in mmengine's reader, and an empty one became the path ``''``;
  :func:`mmseg_ext.config.checks.checkpoint_pointer` reads it checked, before the
  runner exists;
* one file, any path: a hard link of a training image passed as "unlabelled"; every
  data-overlap check compares :func:`mmseg_ext.io.paths.file_identity`;
* an ignore index for 16-bit label maps of 256+ classes, and a tool that names an
  option it does not have (``pseudo_label_quality --ignore-index``);
* a probability ``.npz`` holding arrays its writer never writes;
* a refusal leaves nothing: a missing data root is named (with its config key) before
  the runner makes a work dir, and a work dir a refused run made is removed.
"""
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from conftest import CONFIG, REPO, data_options, run_tool  # noqa: E402
from probs_helpers import write_prob_folder  # noqa: E402

from robustness.test_bad_inputs import assert_refused, run_main, snapshot  # noqa: E402


@pytest.mark.parametrize('kind', ['fifo', 'empty', 'folder'])
def test_a_resume_pointer_that_is_no_pointer_is_named_before_the_runner(tmp_path, kind,
                                                                        shapes_root):
    work = tmp_path / 'w'
    work.mkdir()
    pointer = work / 'last_checkpoint'
    if kind == 'fifo':
        os.mkfifo(pointer)
    elif kind == 'empty':
        pointer.write_text('')
    else:
        pointer.mkdir()
    before = sorted(os.listdir(work))   # (a snapshot would open the FIFO)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work), '--resume',
                    *data_options(shapes_root, 1), subprocess_run=True,
                    timeout=120)   # a FIFO hung here before
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert lines[-1].startswith(f'error: {pointer}: '), lines[-1]
    assert {'fifo': 'FIFO', 'empty': 'empty', 'folder': 'folder'}[kind] in lines[-1]
    assert sorted(os.listdir(work)) == before      # the runner never made anything


def test_file_identity_sees_links_and_spellings(tmp_path):
    from mmseg_ext.io.paths import file_identity
    a = tmp_path / 'a.png'
    a.write_bytes(b'x')
    os.link(a, tmp_path / 'hard.png')
    os.symlink(a, tmp_path / 'soft.png')
    (tmp_path / 'sub').mkdir()
    ids = {file_identity(str(p)) for p in (a, tmp_path / 'hard.png', tmp_path / 'soft.png',
                                           tmp_path / 'sub' / '..' / 'a.png')}
    assert len(ids) == 1
    (tmp_path / 'b.png').write_bytes(b'x')            # same bytes, another file
    assert file_identity(str(tmp_path / 'b.png')) not in ids


def refused_unlabelled_copy(tmp_path, place):
    """``self_train.py`` on shapes data with ``unl/x.png`` made by ``place(training
    image, unl/x.png)``: it is refused as a training image, before a work dir exists.
    Returns the error line and the training image's name."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    root = make_shapes_dataset(str(tmp_path / 'shapes'), num_train=2, num_val=2,
                               size=(32, 40), seed=1)
    unl = tmp_path / 'unl'
    unl.mkdir()
    train = sorted(os.listdir(f'{root}/images/train'))[0]
    place(f'{root}/images/train/{train}', unl / 'x.png')
    shapes = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', shapes, shapes, '--unlabelled', str(unl),
                    '--img-suffix', '.png', '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *options, 'train_cfg.max_iters=1')
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f'{unl / "x.png"}: an unlabelled image is a training image' in last
    assert not osp.exists(tmp_path / 'w')
    return last, train


def test_self_training_refuses_a_hard_link_of_a_training_image(tmp_path):
    refused_unlabelled_copy(tmp_path, os.link)


def _label_world(tmp_path, n):
    """``n`` multi-class classes, one 4x4 image: class 299/256-style values in a
    16-bit label map and probabilities that agree with it."""
    p = np.full((n, 4, 4), 0.5 / (n - 1), np.float32)
    p[n - 1] = 0.5
    probs = write_prob_folder(tmp_path / 'probs', {'ID1/a.png': (p, (4, 4))},
                              [f'k{i}' for i in range(n)], task='multi-class',
                              dtype='float16')
    gt = tmp_path / 'gt' / 'ID1'
    gt.mkdir(parents=True)
    cv2.imwrite(str(gt / 'a.png'), np.full((4, 4), n - 1, np.uint16))
    return probs, str(tmp_path / 'gt')


def test_300_classes_can_be_analysed_with_an_ignore_index_above_them(tmp_path):
    probs, gt = _label_world(tmp_path, 300)
    out = tmp_path / 'conf.png'
    code, lines = run_main('visualize.py', ['confusion', '--probs', probs, '--gt', gt,
                                            '--out', out])
    assert_refused(code, lines, 2, '--ignore-index', "255 is the class 'k255'",
                   'give one >= 300')
    code, lines = run_main('visualize.py', ['confusion', '--probs', probs, '--gt', gt,
                                            '--out', out, '--ignore-index', '300'])
    assert code == 0, lines
    assert cv2.imread(str(out)) is not None
    code, lines = run_main('analysis/pseudo_label_quality.py', [probs, '--gt', gt,
                                                                '--no-progress'])
    assert_refused(code, lines, 2, '--ignore-index', 'give one >= 300')
    from conftest import call_tool
    proc = call_tool('tools/analysis/pseudo_label_quality.py', probs, '--gt', gt,
                     '--ignore-index', '65535', '--pixel-conf', '0', '--no-progress')
    assert proc.returncode == 0, proc.stderr
    # every pixel is class 299 and predicted so: all kept, all right
    assert '| 0 | 100.0% | 100.0% | 100.00 |' in proc.stdout  # mIoU in percent


def test_a_probability_file_with_arrays_its_writer_never_writes_is_refused(tmp_path):
    from mmseg_ext.io.prob_file import read_cropped
    from mmseg_ext.io.prob_meta import ProbFileError
    probs = write_prob_folder(tmp_path / 'p', {'ID1/a.png': (np.full((2, 4, 4), 0.3,
                                                                     np.float32), (4, 4))},
                              ['finger-1', 'finger-2'])
    path = osp.join(probs, 'ID1', 'a.npz')
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(path, extra=np.zeros(3), **arrays)
    with pytest.raises(ProbFileError, match=f'{path}: holds the array.s. extra besides'):
        read_cropped(path)
    before = snapshot(str(tmp_path))
    code, lines = run_main('make_submission.py', [probs, '--format', 'handbone', '--out',
                                                  tmp_path / 's.csv', '--no-progress'])
    assert_refused(code, lines, 1, path, 'extra')
    assert snapshot(str(tmp_path)) == before


def test_a_missing_data_root_is_named_with_its_key_before_any_work_dir(tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, lines = run_main('train.py', [osp.join(REPO, CONFIG), '--work-dir',
                                        tmp_path / 'w'])
    assert_refused(code, lines, 1, 'train_dataloader.dataset.data_root is '
                   'work_dirs/demo_shapes/data', str(tmp_path),
                   'set train_dataloader.dataset.data_root to')
    assert not osp.exists(tmp_path / 'w') and os.listdir(tmp_path) == []


def test_a_missing_data_root_of_a_wrapped_data_set_is_named_with_its_own_key(tmp_path):
    """Round AK (AK-12): a ``ConcatDataset`` member's missing ``data_root`` (the demo's
    pseudo-label layout before pseudo_label.py ran) was named with the wrapper's key,
    and setting that key was refused ("ConcatDataset has no argument 'data_root'"). The
    message names the member's own key, and setting it works."""
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_data_roots
    from mmseg_ext.utils.errors import DataError
    real = tmp_path / 'real'
    real.mkdir()
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(type='HandBoneDataset', data_root=str(real)),
        dict(type='HandBoneDataset', data_root=str(tmp_path / 'missing_pl'))]))))
    with pytest.raises(DataError, match='train_dataloader.dataset.datasets.1.data_root is '
                       f'{tmp_path}/missing_pl, which is not a folder; set '
                       'train_dataloader.dataset.datasets.1.data_root to'):
        check_data_roots(cfg, 'c.py')
    cfg.merge_from_dict({'train_dataloader.dataset.datasets.1.data_root': str(real)})
    check_data_roots(cfg, 'c.py')
