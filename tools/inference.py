"""Run a checkpoint over a folder of images and write class probabilities, one file each.

    python tools/inference.py CONFIG CHECKPOINT|MODEL.onnx --img-dir DIR --out-dir PROBS
                              [--tta] [--out-size native|original|H,W] [--dtype uint8|float16]
                              [--device cpu|cuda:0] [--suffix .png ...] [--force]
                              [--cfg-options key=value ...]

Images are found recursively (``test/DCM/IDxxx/*.png`` works with ``--img-dir test/DCM``).
An ``.onnx`` model written by ``tools/export.py`` (its sidecar beside it) runs in
onnxruntime with the same pipeline, ``--tta`` views and output (docs/export.md).
File format: docs/submission.md and mmseg_ext/io/probs.py.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main, file_suffix


def parse_args(argv=None):
    p = ToolParser(description='Checkpoint -> per-image probability files')
    p.add_argument('config', role='config', help='model config file')
    p.add_argument('checkpoint', role='input', help='checkpoint file (.pth), or a model '
                   'exported by tools/export.py (.onnx, its .onnx.json sidecar beside it)')
    p.add_argument('--img-dir', required=True, role='input', help='folder of images (searched recursively)')
    p.add_argument('--img-list', role='input', help='only the images this file names (one a '
                   'line: the path under --img-dir, with or without its suffix, e.g. '
                   'ID001/img1 from a split file of tools/kfold.py)')
    p.add_argument('--out-dir', required=True, role='output', help='output probability folder')
    p.add_argument('--tta', action='store_true',
                   help='average the probabilities of the views of the config\'s tta_pipeline')
    p.add_argument('--out-size', default='native', role='text',
                   help='resolution of the stored probabilities: native (the model input '
                   'size after the test pipeline resize; default), original, or H,W')
    p.add_argument('--dtype', default='uint8', choices=['uint8', 'float16'],
                   help='storage: uint8 = round(255 p), error <= 1/510 (default); '
                   'float16, relative error <= 2^-11')
    p.add_argument('--device', default=None, role='text',
                   help='torch device (default: cuda:0 when available, else cpu); an .onnx '
                   'model: cpu or cuda (default: cuda when onnxruntime has it)')
    p.add_argument('--suffix', nargs='+', default=None, role='text', type=file_suffix,
                   help='image file suffixes (default: .png .jpg .jpeg .bmp .tif .tiff .webp)')
    p.add_argument('--compress-level', type=int, default=1, choices=range(0, 10),
                   metavar='0-9', help='zlib level of the .npz files (default 1)')
    p.add_argument('--force', action='store_true',
                   help='replace an existing probability folder')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                   help='override config entries, key=value')
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.inference.onnx_backend import is_onnx_model
    from mmseg_ext.inference.predictor import (
        build_predictor,
        infer_folder,
        parse_out_size,
        resolve_device,
    )
    from mmseg_ext.inference.source import prediction_source
    from mmseg_ext.io.images import IMG_SUFFIXES, read_image_list
    suffixes = tuple(args.suffix) if args.suffix else IMG_SUFFIXES
    images = read_image_list(args.img_list, suffixes, root=args.img_dir) \
        if args.img_list else None
    out_size = parse_out_size(args.out_size)
    onnx = is_onnx_model(args.checkpoint)  # onnxruntime picks its own providers
    device = args.device if onnx else resolve_device(args.device)
    predictor = build_predictor(args.config, args.checkpoint, device=device,
                                cfg_options=args.cfg_options, tta=args.tta)
    source = prediction_source(predictor, args.config, args.checkpoint, args.tta,
                               args.out_size)
    summary = infer_folder(predictor, args.img_dir, args.out_dir, out_size=out_size,
                           dtype=args.dtype, force=args.force,
                           suffixes=suffixes, source=source,
                           compresslevel=args.compress_level, images=images,
                           progress=not args.no_progress)
    print(f'inference: {summary.images} images, {summary.classes} classes '
          f'({summary.task}), {args.dtype} at {args.out_size} size -> {summary.out_dir} '
          f'in {summary.seconds:.1f} s')


if __name__ == '__main__':
    main()
