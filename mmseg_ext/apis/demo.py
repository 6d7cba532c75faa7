"""The project's main job on an embedded default: generate data, train, validate, report.

``tools/demo.py`` (and the README's first command) calls :func:`run_demo`.
"""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional

DEMO_CONFIG = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


@dataclass
class DemoResult:
    work_dir: str
    checkpoint: str
    metrics: Dict[str, float]
    metrics_file: str


def run_demo(work_dir: str = 'work_dirs/demo_shapes', config: str = DEMO_CONFIG,
             repo_root: Optional[str] = None) -> DemoResult:
    """Generate the synthetic data under ``work_dir/data``, train and validate.

    Returns where the outputs are: the work dir, the last checkpoint and the final
    validation metrics (also written to ``work_dir/metrics.json``).
    """
    from mmengine.runner import Runner

    from ..datasets.synthetic import make_shapes_dataset
    from .runner_config import train_config

    root = repo_root or osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    data_root = osp.join(work_dir, 'data')
    make_shapes_dataset(data_root)
    cfg = train_config(osp.join(root, config), work_dir=work_dir, cfg_options={
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
    })
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = {k: float(v) for k, v in runner.val_loop.run().items()}
    max_iters = cfg.train_cfg.max_iters
    checkpoint = osp.join(work_dir, f'iter_{max_iters}.pth')
    metrics_file = osp.join(work_dir, 'metrics.json')
    with open(metrics_file, 'w') as f:
        json.dump(metrics, f, indent=2)
    return DemoResult(work_dir, checkpoint, metrics, metrics_file)
