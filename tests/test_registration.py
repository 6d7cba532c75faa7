"""``import mmseg_ext`` registers every component of the plugin in mmseg's registries."""
import importlib
import inspect
import pkgutil

import mmseg.registry as R
from mmengine.registry import MODEL_WRAPPERS

import mmseg_ext

REGISTRIES = {
    'DATASETS': R.DATASETS, 'TRANSFORMS': R.TRANSFORMS, 'MODELS': R.MODELS,
    'METRICS': R.METRICS, 'HOOKS': R.HOOKS, 'VISUALIZERS': R.VISUALIZERS,
    'VISBACKENDS': R.VISBACKENDS, 'MODEL_WRAPPERS': MODEL_WRAPPERS,
}

#: What the plugin promises to register, by registry. Grows with the plugin.
EXPECTED = {
    'DATASETS': ['HandBoneDataset', 'CocoSemanticDataset', 'PortStructuresDataset'],
    'TRANSFORMS': ['LoadImageFromFileChecked', 'LoadHandBoneAnnotations', 'RasterizePolygons',
                   'MultiLabelPad', 'MultiLabelRandomRotate', 'MultiLabelRandomFlip', 'Albumentations',
                   'PackMultiLabelSegInputs', 'LoadCocoAnnotations'],
    'MODELS': ['MultiLabelUPerHead', 'MultiLabelFCNHead', 'MultiLabelOCRHead',
               'MultiLabelASPPHead', 'MultiLabelBCELoss', 'MultiLabelDiceLoss',
               'MultiLabelEncoderDecoder', 'MultiLabelCascadeEncoderDecoder',
               'MultiLabelSegTTAModel', 'MeanTeacherSegmentor',
               'BatchAugmentSegDataPreProcessor', 'SegCutMix'],
    'METRICS': ['MultiLabelDiceMetric', 'PerImageIoUMetric'],
    'MODEL_WRAPPERS': ['CPUDistributedDataParallel'],
    'VISUALIZERS': ['MultiLabelSegLocalVisualizer'],
}


def plugin_registered():
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
