"""Shared pieces of the config smoke tests: scaled-down backbones, a 2-iteration run.

The options are the same ``--cfg-options`` keys a user would pass to run a config
without pretrained weights on a CPU.
"""
#: scaled-down backbones, as --cfg-options (key=value pairs)
SHRINK = {
    'beit': {
        'model.pretrained': None,
        'model.backbone.img_size': (64, 64), 'model.backbone.embed_dims': 32,
        'model.backbone.num_layers': 4, 'model.backbone.num_heads': 2,
        'model.backbone.out_indices': (0, 1, 2, 3), 'model.backbone.drop_path_rate': 0.0,
        'model.neck.embed_dim': 32,
        'model.decode_head.in_channels': [32, 32, 32, 32], 'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 32, 'model.auxiliary_head.channels': 16,
        'model.test_cfg.crop_size': (64, 64), 'model.test_cfg.stride': (32, 32),
        'model.data_preprocessor.test_cfg.size': (64, 64),
        'optim_wrapper.paramwise_cfg.num_layers': 4,
    },
    'swin': {
        'model.backbone.init_cfg': None, 'model.backbone.embed_dims': 16,
        'model.backbone.depths': [1, 1, 1, 1], 'model.backbone.num_heads': [1, 1, 2, 2],
        'model.backbone.drop_path_rate': 0.0,
        'model.decode_head.in_channels': [16, 32, 64, 128], 'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 64, 'model.auxiliary_head.channels': 16,
    },
    'hrnet': {
        'model.pretrained': None,
        'model.backbone.extra.stage1.num_blocks': (1,),
        'model.backbone.extra.stage1.num_channels': (8,),
        'model.backbone.extra.stage2.num_blocks': (1, 1),
        'model.backbone.extra.stage2.num_channels': (4, 8),
        'model.backbone.extra.stage3.num_modules': 1,
        'model.backbone.extra.stage3.num_blocks': (1, 1, 1),
        'model.backbone.extra.stage3.num_channels': (4, 8, 16),
        'model.backbone.extra.stage4.num_modules': 1,
        'model.backbone.extra.stage4.num_blocks': (1, 1, 1, 1),
        'model.backbone.extra.stage4.num_channels': (4, 8, 16, 32),
        'model.decode_head.0.in_channels': [4, 8, 16, 32], 'model.decode_head.0.channels': 60,
        'model.decode_head.1.in_channels': [4, 8, 16, 32], 'model.decode_head.1.channels': 16,
        'model.decode_head.1.ocr_channels': 8,
    },
    'resnet': {
        'model.pretrained': None, 'model.backbone.depth': 18,
        'model.backbone.stem_channels': 8, 'model.backbone.base_channels': 8,
        'model.decode_head.in_channels': 64, 'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 32, 'model.auxiliary_head.channels': 16,
    },
    'none': {},
}

def pipeline_options(cfg, loader, scale, crop):
    """Override the resize scale / crop / pad size wherever the config's pipeline has them."""
    opts = {}
    for i, step in enumerate(cfg[loader]['dataset']['pipeline']):
        key = f'{loader}.dataset.pipeline.{i}'
        if step['type'] in ('RandomResize', 'Resize'):
            opts[f'{key}.scale'] = scale
        elif step['type'] == 'RandomCrop':
            opts[f'{key}.crop_size'] = crop
        elif step['type'] == 'MultiLabelPad':
            opts[f'{key}.size'] = crop
    return opts


RUN = {
    'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
    'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
    'val_dataloader.dataset.indices': 1,
    'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 2,
    'log_level': 'WARNING',
}


def train_two_iterations(cfg, work_dir: str, name: str) -> list:
    """Train ``cfg`` (already shrunk, :data:`RUN` merged) with the stock runner in
    ``work_dir``; return the rows of its ``scalars.json`` after checking it ran 2 iters."""
    import glob
    import json
    import os.path as osp

    from mmengine.runner import Runner
    cfg.work_dir = work_dir
    cfg.visualizer.name = f'visualizer_{name}'  # the visualizer is a named singleton
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        return [json.loads(line) for line in f]
