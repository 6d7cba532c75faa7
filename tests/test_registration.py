"""The plugin registers every component in mmseg's registries on first use, never at import.

Scenarios run in fresh interpreters: which modules an import loads depends on what the
process imported before.
"""
import importlib
import inspect
import os
import os.path as osp
import pkgutil
import re
import subprocess
import sys

import mmseg.registry as R
import pytest
from mmengine.registry import MODEL_WRAPPERS

import mmseg_ext

REGISTRIES = {
    'DATASETS': R.DATASETS, 'TRANSFORMS': R.TRANSFORMS, 'MODELS': R.MODELS,
    'METRICS': R.METRICS, 'HOOKS': R.HOOKS, 'VISUALIZERS': R.VISUALIZERS,
    'VISBACKENDS': R.VISBACKENDS, 'MODEL_WRAPPERS': MODEL_WRAPPERS,
    'DATA_SAMPLERS': R.DATA_SAMPLERS,
}

#: What the plugin promises to register, by registry. Grows with the plugin.
EXPECTED = {
    'DATASETS': ['HandBoneDataset', 'CocoSemanticDataset', 'PortStructuresDataset',
                 'UnlabelledImageDataset'],
    'TRANSFORMS': ['LoadImageFromFileChecked', 'LoadAnnotationsChecked', 'LoadHandBoneAnnotations', 'RasterizePolygons',
                   'MultiLabelPad', 'MultiLabelRandomRotate', 'MultiLabelRandomFlip', 'Albumentations',
                   'PackMultiLabelSegInputs', 'LoadCocoAnnotations'],
    'MODELS': ['MultiLabelUPerHead', 'MultiLabelFCNHead', 'MultiLabelOCRHead',
               'MultiLabelASPPHead', 'MultiLabelBCELoss', 'MultiLabelDiceLoss',
               'MultiLabelEncoderDecoder', 'MultiLabelCascadeEncoderDecoder',
               'MultiLabelSegTTAModel', 'MeanTeacherSegmentor',
               'BatchAugmentSegDataPreProcessor', 'SegCutMix', 'MultiLabelSegformerHead',
               'UNetHead', 'MultiLabelUNetHead', 'TimmEncoder', 'WeakToStrongSegmentor',
               'MultiLabelWeakToStrongSegmentor'],
    'METRICS': ['MultiLabelDiceMetric', 'PerImageIoUMetric'],
    'MODEL_WRAPPERS': ['CPUDistributedDataParallel'],
    'DATA_SAMPLERS': ['LabelledRatioBatchSampler'],
    'VISUALIZERS': ['MultiLabelSegLocalVisualizer'],
}


def plugin_registered():
    mmseg_ext.register_all_modules()
    found = {}
    for name, registry in REGISTRIES.items():
        for key, cls in registry.module_dict.items():
            if getattr(cls, '__module__', '').startswith('mmseg_ext'):
                found.setdefault(name, set()).add(key)
    return found


def test_every_expected_component_is_registered():
    found = plugin_registered()
    for registry, names in EXPECTED.items():
        assert set(names) <= found.get(registry, set()), registry


def test_nothing_registered_that_is_not_expected():
    found = plugin_registered()
    assert {k: v for k, v in found.items() if v} == \
        {k: set(v) for k, v in EXPECTED.items() if v}


def test_all_modules_import_and_build_through_registry():
    for info in pkgutil.walk_packages(mmseg_ext.__path__, 'mmseg_ext.'):
        importlib.import_module(info.name)  # every module imports cleanly
    for registry, names in EXPECTED.items():
        for name in names:
            assert inspect.isclass(REGISTRIES[registry].get(name)) or \
                callable(REGISTRIES[registry].get(name))


def test_registering_modules_list_every_module_that_registers():
    """The registration list, against a scan of the source for ``register_module(`` and
    ``register_backend(``."""
    from mmseg_ext.registration import REGISTERING_MODULES
    root = osp.dirname(mmseg_ext.__file__)
    found = set()
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith('.py'):
                with open(osp.join(folder, name)) as f:
                    if re.search(r'\.register_module\(|\bregister_backend\(', f.read()):
                        rel = osp.relpath(osp.join(folder, name[:-3]), root)
                        found.add(rel.replace(os.sep, '.'))
    assert found == set(REGISTERING_MODULES)


def run_python(code):
    """Run ``code`` in a fresh interpreter; return its stdout lines (fails on an error)."""
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=osp.dirname(osp.dirname(osp.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


HEAVY = "print(*(m in sys.modules for m in ('torch', 'mmseg', 'mmcv', 'mmengine.runner')))"

#: Modules that the model-free tools import: none may load torch or mmseg.
LIGHT = ['mmseg_ext', 'mmseg_ext.io.rle', 'mmseg_ext.io.probs', 'mmseg_ext.io.submission',
         'mmseg_ext.io.atomic', 'mmseg_ext.io.hand_bone_json', 'mmseg_ext.io.ground_truth',
         'mmseg_ext.utils.per_class', 'mmseg_ext.datasets.splits',
         'mmseg_ext.datasets.coco_index', 'mmseg_ext.submission.make', 'mmseg_ext.submission.check',
         'mmseg_ext.ensembling.ensemble', 'mmseg_ext.preparation.kfold', 'mmseg_ext.postprocessing.thresholds',
         'mmseg_ext.workflows.visualize', 'mmseg_ext.preparation.coco_to_masks',
         'mmseg_ext.workflows.pseudo_label', 'mmseg_ext.preparation.synthetic']


def run_side_by_side(codes):
    """Run each snippet in its own fresh interpreter, all at once; ``{code: (returncode,
    stdout words, stderr tail)}``."""
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    procs = [subprocess.Popen([sys.executable, '-c', code], cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for code in codes]
    results = {}
    for code, proc in zip(codes, procs):
        out, err = proc.communicate(timeout=600)
        results[code] = (proc.returncode, out.split(), err[-2000:])
    return results


@pytest.fixture(scope='module')
def light_imports():
    return run_side_by_side([f'import sys, {m}; {HEAVY}' for m in LIGHT])


@pytest.mark.parametrize('module', LIGHT)
def test_import_loads_neither_torch_nor_mmseg(module, light_imports):
    code, out, err = light_imports[f'import sys, {module}; {HEAVY}']
    assert code == 0, err
    assert out == ['False'] * 4


BUILD = """
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS
cfg = Config.fromfile('custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py')
init_default_scope('mmseg')
model = MODELS.build(cfg.model)
print(type(model).__name__, type(TRANSFORMS.build(dict(type='MultiLabelRandomFlip', prob=1.))).__name__)
from mmengine.runner.checkpoint import CheckpointLoader
print(CheckpointLoader._schemes[''].__module__)
import mmengine.fileio.backends.registry_utils as backends
print('atomic_local' in backends.backends)
"""

#: What a user program can have imported before its config's ``custom_imports``.
BEFORE = [
    'import mmseg_ext.io.rle',                    # a light import (the package too)
    'import mmseg.registry; import mmseg_ext',    # mmseg first, no lookup yet
    # a lookup already ran mmseg's own locations: the plugin registers at once
    'from mmseg.registry import MODELS; MODELS.get("UNet"); import mmseg_ext',
    # mmengine's config and checkpoint modules already loaded
    'import mmengine.config, mmengine.runner.checkpoint; import mmseg_ext',
]


@pytest.fixture(scope='module')
def build_outputs():
    """Every scenario of :data:`BEFORE` in its own fresh interpreter, run side by side."""
    results = run_side_by_side([before + '\n' + BUILD for before in BEFORE])
    return {before: results[before + '\n' + BUILD] for before in BEFORE}


@pytest.mark.parametrize('before', BEFORE)
def test_config_builds_whatever_was_imported_before(before, build_outputs):
    """``custom_imports=['mmseg_ext']`` + ``mmseg::`` bases + registry builds + checkpoint
    loading + the atomic checkpoint backend (configs the tools dump name it), after every
    order of imports a user program can have."""
    code, out, err = build_outputs[before]
    assert code == 0, err
    assert out == ['MultiLabelEncoderDecoder', 'MultiLabelRandomFlip',
                   'mmseg_ext.utils.checkpoint', 'True']


def test_only_mmseg_registries_get_the_plugin_location():
    """Registries made without locations share one default list in mmengine: the plugin
    must not add itself to it (every other library's registries would import it)."""
    from mmengine.registry import FUNCTIONS, MODELS, Registry

    from mmseg_ext.registration import ALL_MODULES
    mmseg_ext.register_all_modules()
    assert ALL_MODULES in R.MODELS._locations and ALL_MODULES in R.LOOPS._locations
    assert ALL_MODULES not in MODELS._locations and ALL_MODULES not in FUNCTIONS._locations
    assert Registry('unrelated', scope='other')._locations == []


def test_a_reloaded_registration_module_installs_no_second_finder():
    out = run_python('import importlib, sys, mmseg_ext, mmseg_ext.registration as r; '
                     'importlib.reload(r); r.install(); import mmengine.config; '
                     "print(sum(getattr(f, 'mmseg_ext_after_import', False) "
                     'for f in sys.meta_path))')
    assert out == ['1']


def test_registering_the_transforms_opens_no_network_connection():
    """albumentations 2.x asks PyPI for its version at import unless told not to; the
    plugin tells it not to, so building a pipeline offline neither waits nor warns."""
    code = (
        'import os, socket, urllib.request\n'
        'os.environ.pop("NO_ALBUMENTATIONS_UPDATE", None)\n'
        'calls = []\n'
        'def refuse(*a, **k):\n'
        '    calls.append(a)\n'
        '    raise OSError("network used")\n'
        'socket.create_connection = refuse\n'
        'urllib.request.OpenerDirector.open = refuse\n'
        'from mmseg_ext import register_all_modules\n'
        'register_all_modules()\n'
        'import albumentations\n'
        'print("calls", len(calls))\n')
    env = {k: v for k, v in os.environ.items() if k != 'NO_ALBUMENTATIONS_UPDATE'}
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, cwd=osp.dirname(osp.dirname(osp.abspath(__file__))), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'calls 0' in proc.stdout
    assert 'Error fetching version info' not in proc.stderr
