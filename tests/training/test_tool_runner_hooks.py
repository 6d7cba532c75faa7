"""The tools' runners carry the plugin's checking hooks (built, not read from source):
every training and test run through ``tools/`` checks its data sets before a loop."""
import os.path as osp

import pytest
from conftest import REPO

SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
HOOKS = ('FiniteLossHook', 'ValidationOverlapHook', 'PseudoLabelImageHook',
         'ImageSuffixCaseHook')


@pytest.mark.parametrize('kind', ['ToolRunner', 'TestToolRunner'])
def test_the_runner_registers_the_checking_hooks(tmp_path, shapes_root, kind):
    from mmseg_ext.training import tool_runner
    from mmseg_ext.training.runner import train_config
    options = {f'{s}_dataloader.dataset.data_root': shapes_root
               for s in ('train', 'val', 'test')}
    cfg = train_config(SHAPES, work_dir=str(tmp_path / 'w'), cfg_options=options)
    runner = getattr(tool_runner, kind).from_cfg(cfg)
    try:
        names = [type(hook).__name__ for hook in runner.hooks]
        for name in HOOKS:
            assert names.count(name) == 1, names
    finally:
        runner.release_work_dir()
