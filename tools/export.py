"""Export a checkpoint to ONNX with probabilities out, and a JSON sidecar beside it.

    python tools/export.py CONFIG CHECKPOINT --out model.onnx [--shape H W]
        [--thresholds thr.json] [--min-area N|FILE.json] [--keep-largest K|FILE.json]
        [--connectivity 4|8] [--cv-dir WORK_DIR] [--force] [--cfg-options key=value ...]

Writes ``model.onnx`` (input: the preprocessed image batch; outputs: ``probs``, sigmoid
per class for a multi-label model, softmax otherwise, and ``logits``) and
``model.onnx.json`` (classes, preprocessing, test scale, flip swaps, tuned
post-processing, digests), both or neither. ``tools/inference.py CONFIG model.onnx``
runs it in onnxruntime. Needs the export extra: ``pip install -r requirements/export.txt``.
Details: docs/export.md.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main, number_in_range


def parse_args(argv=None):
    p = ToolParser(description='Checkpoint -> ONNX model (probabilities out) + JSON sidecar')
    p.add_argument('config', role='config', help='model config file')
    p.add_argument('checkpoint', role='input', help='checkpoint file (.pth)')
    p.add_argument('--out', required=True, role='output',
                   help='the ONNX file to write (.onnx); the sidecar is OUT.json')
    p.add_argument('--shape', nargs=2, type=number_in_range(int, 1, 16384), metavar=('H', 'W'),
                   help='a graph for this input size only (default: batch, height and width '
                   'dynamic)')
    p.add_argument('--thresholds', role='input-or-value', help='tuned multi-label thresholds '
                   'for the sidecar: a number or JSON {class: threshold}')
    p.add_argument('--min-area', role='input-or-value', help='tuned minimum component area '
                   'for the sidecar: a number or JSON {class: N}, >= 0 (0: none)')
    p.add_argument('--keep-largest', role='input-or-value', help='tuned largest-components '
                   'count for the sidecar: a number or JSON {class: K}, >= 0 (0: no limit)')
    p.add_argument('--connectivity', type=int, choices=[4, 8],
                   help='component connectivity of the clean-up (default 8; with --cv-dir '
                   'the one cv tuned at, 8)')
    p.add_argument('--cv-dir', role='input', help='a tools/cv.py work dir: its tuned/*.json '
                   'give the thresholds and the clean-up')
    p.add_argument('--force', action='store_true',
                   help='replace an existing ONNX file and sidecar')
    p.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                   help='override config entries, key=value')
    p.conflicts('--cv-dir', '--thresholds', '--min-area', '--keep-largest',
                why='the work dir gives the tuned values')
    p.requires_one_of('--connectivity', '--min-area', '--keep-largest', '--cv-dir',
                      why='it defines the components they remove')
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.export.onnx_export import export_onnx
    s = export_onnx(args.config, args.checkpoint, args.out, shape=args.shape,
                    thresholds=args.thresholds, min_area=args.min_area,
                    keep_largest=args.keep_largest, cv_dir=args.cv_dir,
                    connectivity=args.connectivity, cfg_options=args.cfg_options,
                    force=args.force)
    n = 'N' if s.input_shape[0] is None else str(s.input_shape[0])
    shape = f'{n} x 3 x H x W dynamic' if s.input_shape[2] is None else \
        f'{n} x 3 x {s.input_shape[2]} x {s.input_shape[3]}'
    print(f'export: {s.classes} classes ({s.task}), input {shape}, {s.megabytes:.1f} MB '
          f'-> {s.onnx} + {_osp.basename(s.sidecar)}; onnxruntime vs torch max |dp| '
          f'{s.max_abs_diff:.1e}; {s.seconds:.1f} s')


if __name__ == '__main__':
    main()
