"""Round AK of bad inputs (issue 28): pseudo-labels reached through a folder above
their own or through links, copies of the pool as pseudo-labelled or unlabelled images,
and pseudo-labels given as ground truth."""
import os
import os.path as osp
import shutil

import pytest

from mmseg_ext.utils.errors import DataError

from .test_round_aj_cases import _folder_dataset, _label_png_pseudo_labels


def test_pseudo_labels_read_through_a_folder_above_or_a_link_are_checked(tmp_path):
    """AK-1: a data set whose label folder held the pseudo-label folder (``lbl/`` with
    ``lbl/pl/``), or whose label files were links into it, skipped the check and trained
    the val images' labels on training images, exit 0. Each label file now finds its
    pseudo-label folder from its own real path."""
    from mmseg_ext.training.pseudo_label_images import check_dataset_pseudo_images
    images, pl = _label_png_pseudo_labels(tmp_path)
    # labels named through the folder above: <tmp>/pl/val/a.png for the image
    # <imgs>/pl/val/a.png, which is the train picture
    above = tmp_path / 'imgs' / 'pl' / 'val'
    above.mkdir(parents=True)
    shutil.copy(osp.join(images, 'train', 'a.png'), above / 'a.png')
    with pytest.raises(DataError, match='not the image the pseudo-label'):
        check_dataset_pseudo_images(_folder_dataset(str(tmp_path / 'imgs'), str(tmp_path)))
    # a folder of links to the labels
    links = tmp_path / 'links'
    links.mkdir()
    os.symlink(osp.join(pl, 'val', 'a.png'), links / 'a.png')
    with pytest.raises(DataError, match='not the image the pseudo-label'):
        check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'train'), str(links)))
    check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'val'), str(links)))


def test_copies_are_the_same_images(tmp_path):
    """AK-2: ``cv.py --pseudo-images`` holding a byte-identical copy of the pool (each
    fold trained on its own validation images), and ``self_train.py --unlabelled`` a
    copy of the teacher's training images, passed: both compared files by identity.
    They compare content now (sizes first, then SHA-256)."""
    from mmseg_ext.io.paths import same_content
    a, b = tmp_path / 'a.png', tmp_path / 'b.png'
    a.write_bytes(b'1234')
    b.write_bytes(b'1235')  # same size, other content
    copy = tmp_path / 'copy.png'
    shutil.copy(a, copy)
    os.symlink(a, tmp_path / 'link.png')
    assert same_content([str(copy), str(tmp_path / 'link.png'), str(b)], [str(a)]) == [
        (str(copy), str(a)), (str(tmp_path / 'link.png'), str(a))]
    assert same_content([str(b)], [str(a), str(tmp_path / 'missing.png')]) == []


def test_pseudo_labels_are_not_ground_truth(tmp_path):
    """AK-3: a pseudo-label folder given as ``--gt`` (tune_thresholds, the pseudo-label
    quality report) scored a model against its own output: Dice 0.9993, 100%."""
    from mmseg_ext.io.ground_truth import GroundTruth
    _, pl = _label_png_pseudo_labels(tmp_path)
    for root in (pl, osp.join(pl, 'val')):
        with pytest.raises(DataError, match="lies in the pseudo-label folder .*a model's "
                                            'predictions, not ground truth'):
            GroundTruth(root, ['sky', 'road'])


def test_the_heldback_benchmark_checks_its_inputs_before_training(tmp_path):
    """AK-5, AK-6: ``bench_heldback.py --heldback`` equal to ``--train`` printed a
    "held-back" score measured on the training images (exit 0); a held-back root
    without labels was found only after the training, with a traceback; a work dir of
    the user's got the run's folder. Each is one error line before anything trains."""
    from conftest import run_tool
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '2', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('mine')
    for heldback, work, expected in (
            (data / 'train', tmp_path / 'w1', 'a held-back image is the training image'),
            (data / 'test', tmp_path / 'w2', 'without outputs_json/'),
            (data / 'train', mine, 'holds notes.txt, which this benchmark does not make')):
        proc = run_tool('tools/benchmark/bench_heldback.py', config, '--train',
                        str(data / 'train'), '--heldback', str(heldback), '--work-dir',
                        str(work), '--iters', '2', '--no-progress')
        lines = [line for line in (proc.stdout + proc.stderr).splitlines()
                 if line.startswith('error:')]
        assert proc.returncode != 0 and len(lines) == 1 and expected in lines[0], \
            proc.stderr[-2000:]
        assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'w1').exists() and not (tmp_path / 'w2').exists()
    assert sorted(os.listdir(mine)) == ['notes.txt']
