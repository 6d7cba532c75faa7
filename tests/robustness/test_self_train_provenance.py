"""Self-training reuses a round's probabilities only while the unlabelled images are the
ones they were predicted from (issue 28, "resume only what they can prove").

A finished run, then an unlabelled image replaced in place by another image under the
same name (as a user refreshing a folder does): the same command keeps the teacher,
predicts the probabilities again (the new image's content is in them), and trains the
student again on the new pseudo-labels. An unchanged folder reuses everything.
"""
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from mmseg_ext.io.probs import ProbFolder

SHAPES = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


@pytest.mark.slow
def test_an_unlabelled_image_replaced_in_place_is_predicted_again(tmp_path, shapes_root,
                                                                   monkeypatch, fast_cpu):
    import mmseg_ext.workflows.self_training as st
    trained = []
    real = st.train_and_validate

    def counting(cfg):
        trained.append(osp.basename(cfg.work_dir))
        return real(cfg)
    monkeypatch.setattr(st, 'train_and_validate', counting)

    unlabelled = tmp_path / 'unlabelled'
    shutil.copytree(osp.join(shapes_root, 'images', 'val'), unlabelled)
    options = {f'{s}_dataloader.dataset.data_root': shapes_root
               for s in ('train', 'val', 'test')}
    options.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                    'default_hooks.checkpoint.interval': 2,
                    'train_dataloader.batch_size': 2, 'log_level': 'WARNING'})
    work = str(tmp_path / 'w')
    kwargs = dict(unlabelled_dir=str(unlabelled), work_dir=work, img_suffix='.png',
                  pixel_conf=0.0, cfg_options=options, progress=False,
                  log=lambda m: None)
    st.self_train(SHAPES, SHAPES, **kwargs)
    assert trained == ['teacher', 'student']
    probs_dir = osp.join(work, 'round1', 'probs')
    index = osp.join(probs_dir, 'index.json')

    # the same command on the same images: everything reused
    stamp = os.stat(index).st_mtime_ns
    st.self_train(SHAPES, SHAPES, **kwargs)
    assert trained == ['teacher', 'student']
    assert os.stat(index).st_mtime_ns == stamp

    # one image replaced by another (its mirror) under the same name and size
    names = sorted(os.listdir(unlabelled))
    target = unlabelled / names[0]
    import cv2
    image = cv2.imread(str(target))
    before = ProbFolder(probs_dir).read(osp.splitext(names[0])[0])[0]
    cv2.imwrite(str(target), np.ascontiguousarray(image[:, ::-1]))
    st.self_train(SHAPES, SHAPES, **kwargs)
    assert trained == ['teacher', 'student', 'student']   # the teacher is kept
    after = ProbFolder(probs_dir).read(osp.splitext(names[0])[0])[0]
    assert os.stat(index).st_mtime_ns != stamp
    assert not np.array_equal(np.asarray(before), np.asarray(after))
