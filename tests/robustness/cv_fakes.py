"""Cheap multi-stage runs for the ownership, provenance and concurrency cells.

``tools/cv.py`` trains a fold in another process through its ``fold_command`` hook; here
that process copies a ready checkpoint of the config's model into the fold folder and
writes mmengine's ``last_checkpoint`` pointer (no training: ~50 ms a fold). Everything
after it (validation predictions, OOF merge, scores, tuning, the test stage) is the
real code.
"""
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
HANDBONE = osp.join(REPO, 'custom_configs', 'demo',
                    'unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py')

#: a fold's "training": argv = [checkpoint to copy, fold work dir]
FAKE_TRAIN = '''
import os, shutil, sys
src, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
dst = os.path.join(work, 'iter_1.pth')
shutil.copyfile(src, dst)
# in a log folder, where mmengine writes its scalars
os.makedirs(os.path.join(work, '20260101_000000', 'vis_data'), exist_ok=True)
with open(os.path.join(work, '20260101_000000', 'vis_data', 'scalars.json'), 'w') as f:
    f.write(os.environ.get('PYTHON', ''))
with open(os.path.join(work, 'last_checkpoint'), 'w') as f:
    f.write(dst)
'''


def fake_fold_command(checkpoint):
    """A ``fold_command`` for :func:`~mmseg_ext.workflows.cross_validation.cross_validate`
    whose folds "train" by copying ``checkpoint``."""
    def command(config, work_dir, ranks, resume):
        return [sys.executable, '-c', FAKE_TRAIN, checkpoint, work_dir]
    return command


def model_checkpoint(config, path, options=None, seed=0):
    """Save a freshly initialised model of ``config`` as a checkpoint at ``path``."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(seed)
    model = build_bare_model(load_config(config, options))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


def shapes_world(tmp_path_factory, name: str) -> dict:
    """4 train + 2 val shapes images (32x40) under a new temporary folder ``name``, and
    a checkpoint of the shapes model: ``dict(root=..., ckpt=...)``."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    root = tmp_path_factory.mktemp(name)
    data = make_shapes_dataset(str(root / 'shapes'), num_train=4, num_val=2,
                               size=(32, 40), seed=1)
    return dict(root=data, ckpt=model_checkpoint(SHAPES, root / 'shapes.pth'))


def shapes_cfg_options(root):
    """``cfg_options`` pointing the shapes config at ``root`` (32x40 images)."""
    options = {f'{s}_dataloader.dataset.data_root': str(root)
               for s in ('train', 'val', 'test')}
    options.update({'model.data_preprocessor.size': (32, 40), 'log_level': 'WARNING'})
    return options


def handbone_cfg_options(root):
    options = {f'{s}_dataloader.dataset.data_root': str(root)
               for s in ('train', 'val', 'test')}
    options['log_level'] = 'WARNING'
    return options


def handbone_world(root, patients=4):
    """Synthetic hand bones under ``root/data`` (``patients`` patients and 1 test
    patient, 64x64) and a checkpoint of the hand-bone demo model:
    ``dict(data=..., ckpt=..., options=..., test_dir=...)``."""
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    data = str(root / 'data')
    write_synthetic_handbone(data, num_patients=patients, size=(64, 64),
                             num_test_patients=1, progress=False)
    return dict(data=data, ckpt=model_checkpoint(HANDBONE, root / 'handbone.pth'),
                options=handbone_cfg_options(f'{data}/train'), test_dir=f'{data}/test/DCM')


def run_cv(config, work, checkpoint, options, **kwargs):
    """One cross-validation run in ``work`` with fake fold training (2 folds)."""
    from mmseg_ext.workflows.cross_validation import cross_validate
    kwargs.setdefault('log', lambda message: None)
    return cross_validate(config, kwargs.pop('num_folds', 2), str(work), ranks_per_fold=1,
                          fold_command=fake_fold_command(checkpoint), cfg_options=options,
                          progress=False, **kwargs)
