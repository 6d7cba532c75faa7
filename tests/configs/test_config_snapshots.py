"""The shipped configs resolve to exactly the recorded settings.

``tests/configs/data/resolved_configs/<config path with / as __>.json`` holds
``Config.fromfile(...).to_dict()`` of every config under ``custom_configs/`` (bases
excluded), recorded before the configs were reorganised into shared bases. Variables
that only help write a config (``HELPER_KEYS``) are left out: the runner never reads them.

After an intended change to a config, record it again:
    python tests/configs/test_config_snapshots.py --update
"""
import glob
import json
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SNAPSHOTS = osp.join(REPO, 'tests', 'configs', 'data', 'resolved_configs')
#: Config variables used only to build other entries while the file is read (loss lists,
#: a shared optimizer, sizes and class counts copied into the model and pipelines); the
#: runner reads none of them.
HELPER_KEYS = {'multilabel_losses', 'aux_losses', 'optimizer', 'data_preprocessor',
               'lateral_flip', 'small_rotation', 'xray_exposure',
               'num_classes', 'crop_size', 'checkpoint_file', 'norm_cfg'}

pytestmark = pytest.mark.stacks


def config_files():
    found = glob.glob(osp.join(REPO, 'custom_configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, REPO) for p in found if '/_base_/' not in p)


def resolved(path):
    """The config as plain JSON data, helper variables left out."""
    from mmengine.config import Config

    import mmseg_ext  # noqa: F401  (mmseg:: bases on both stacks)
    data = Config.fromfile(osp.join(REPO, path)).to_dict()
    data = {k: v for k, v in data.items() if k not in HELPER_KEYS}
    return json.loads(json.dumps(data, sort_keys=True, default=repr))


def snapshot_path(path):
    name = osp.relpath(path, 'custom_configs').replace('/', '__')
    return osp.join(SNAPSHOTS, name + '.json')


@pytest.mark.parametrize('path', config_files())
def test_config_resolves_to_its_snapshot(path):
    recorded = snapshot_path(path)
    assert osp.isfile(recorded), f'no snapshot for {path}: run {__doc__.splitlines()[-1]}'
    with open(recorded) as f:
        expected = json.load(f)
    actual = resolved(path)
    changed = sorted(k for k in set(expected) | set(actual)
                     if expected.get(k) != actual.get(k))
    assert not changed, f'{path}: these settings changed: {changed}'


def test_every_snapshot_has_a_config():
    names = {osp.basename(snapshot_path(p)) for p in config_files()}
    stale = sorted(set(os.listdir(SNAPSHOTS)) - names)
    assert not stale, f'snapshots without a config: {stale}'


if __name__ == '__main__' and '--update' in sys.argv:
    os.makedirs(SNAPSHOTS, exist_ok=True)
    for path in config_files():
        with open(snapshot_path(path), 'w') as f:
            json.dump(resolved(path), f, indent=1, sort_keys=True)
            f.write('\n')
    print(f'recorded {len(config_files())} configs in {SNAPSHOTS}')
