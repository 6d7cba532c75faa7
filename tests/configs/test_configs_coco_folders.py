"""Every trash / port / CamVid config builds, trains 2 iterations and validates once.

Synthetic data in each task's layout; the backbones are shrunk through the same
``--cfg-options`` keys a user would pass (tiny widths/depths, 32-64 px, no pre-training).
"""
import os.path as osp

import pytest
from config_smoke import RUN, SHRINK, pipeline_options, train_two_iterations
from mmengine.config import Config

from mmseg_ext.datasets.synthetic.coco import make_trash_coco
from mmseg_ext.datasets.synthetic.port import make_port_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = [pytest.mark.stacks, pytest.mark.slow]

CONFIGS = [
    ('trash/upernet_beit-base_8xb2-20k_trash-512x512.py', 'beit', 'trash'),
    ('trash/upernet_swin-base-patch4-window7-in22k-pre_8xb2-20k_trash-512x512.py', 'swin',
     'trash'),
    ('trash/ocrnet_hr18_4xb4-20k_trash-512x512.py', 'hrnet', 'trash'),
    ('trash/deeplabv3_r101-d8_4xb4-20k_trash-512x512.py', 'resnet', 'trash'),
    ('port/upernet_swin-base-patch4-window7-in22k-pre_8xb2-20k_port-512x512.py', 'swin',
     'port'),
    ('camvid/deeplabv3_r101-d8_4xb4-20k_camvid-360x480.py', 'resnet', 'camvid'),
    ('camvid/fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py', 'none', 'camvid'),
]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    base = tmp_path_factory.mktemp('cfgdata')
    make_trash_coco(str(base / 'trash'), num_train=3, num_val=1, num_test=1, size=(64, 64))
    make_port_dataset(str(base / 'port'), num_labeled=3, num_unlabeled=1, num_test=1,
                      size=(48, 80))
    make_shapes_dataset(str(base / 'camvid'), num_train=3, num_val=1, size=(32, 40))
    return {k: str(base / k) for k in ('trash', 'port', 'camvid')}


def data_options(cfg, task, root):
    """Point the config at the synthetic data; (w, h) scale and (h, w) crop to fit it."""
    opts = {f'{loader}.dataset.data_root': root for loader in
            ('train_dataloader', 'val_dataloader')}
    if task == 'trash':          # 64x64 images
        scale, crop = (64, 64), (64, 64)
    elif task == 'port':         # 48x80 (non-square) images, 48x48 crops, no fold files
        scale, crop = (80, 48), (48, 48)
        opts.update({'train_dataloader.dataset.ann_file': '',
                     'val_dataloader.dataset.ann_file': ''})
    else:                        # shapes folders (images/train/*.png) as CamVid folders
        scale, crop = (40, 32), (32, 40)
        for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
            opts[f'{loader}.dataset.img_suffix'] = '.png'
            opts[f'{loader}.dataset.data_prefix.img_path'] = f'images/{split}'
            opts[f'{loader}.dataset.data_prefix.seg_map_path'] = f'labels/{split}'
    for loader in ('train_dataloader', 'val_dataloader'):
        opts.update(pipeline_options(cfg, loader, scale, crop))
    opts['model.data_preprocessor.size'] = crop
    return opts


@pytest.mark.parametrize('config,backbone,task', CONFIGS,
                         ids=[osp.basename(c[0])[:-3] for c in CONFIGS])
def test_config_trains_two_iterations_and_validates(config, backbone, task, data, tmp_path,
                                                     fast_cpu):
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', config))
    assert cfg.custom_imports == dict(imports=['mmseg_ext'], allow_failed_imports=False)
    cfg.merge_from_dict({**SHRINK[backbone], **data_options(cfg, task, data[task]), **RUN})
    rows = train_two_iterations(cfg, str(tmp_path), f'{task}_{backbone}_{tmp_path.name}')
    val = [r for r in rows if 'mIoU' in r]
    assert len(val) == 1 and 0 <= val[0]['mIoU'] <= 100
    assert 'mIoU_per_image' in val[0]
    assert any('loss' in r for r in rows)
