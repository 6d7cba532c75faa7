"""The GPU check: training speed and memory of the hand-bone configs (the four of the
card, SegFormer, the small-data recipe, and the U-Nets on timm encoders at 512 and
1024), slide-window inference of 2048x2048 images with UperNet-BEiT and whole-image
inference at 2048 with the U-Net/ConvNeXt-S. See gpu_check.sh.

    python tools/benchmark/gpu_check.py [--iters 50] [--warmup 10] [--images 8]
                                        [--out work_dirs/gpu_check] [--workers 8]
                                        [--tiny]
                                        [--configs CONFIG ...]

Full mode needs one CUDA GPU: each config's own crops (512x512, or 1024x1024), AMP,
random initialisation (no downloads), synthetic hand-bone data written under --out.
--tiny runs the same code on the CPU at 64x64 for 2 iterations and 2 small images
(seconds; it proves the script end to end). Configs whose encoder needs timm get a
"skipped" row where timm is not installed.
"""
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import _bootstrap  # noqa: E402,F401  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range  # noqa: E402
from mmseg_ext.utils.errors import UsageError  # noqa: E402

CONFIGS = ('upernet_beit.py', 'upernet_swin.py', 'ocrnet_hr18.py', 'deeplabv3_r101.py',
           'segformer_mit-b2_multilabel_4xb2-20k_handbone-512x512.py',
           'recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-512x512.py',
           'unet/unet_convnext-s_4xb2-20k_handbone-512x512.py',
           'unet/unet_convnext-s_4xb2-20k_handbone-1024x1024.py',
           'unet/unet_efficientnetv2-s_4xb2-20k_handbone-512x512.py',
           'unet/unet_resnext101-32x8d_4xb2-20k_handbone-512x512.py',
           'unet/unet_swin-t_4xb2-20k_handbone-512x512.py')
#: whole-image inference at the data's full size (the U-Net predicts at full resolution)
WHOLE_INFERENCE = 'unet/unet_convnext-s_4xb2-20k_handbone-512x512.py'


def needs_timm(cfg) -> bool:
    return cfg.model.get('backbone', {}).get('type') == 'TimmEncoder'


def timm_missing() -> str:
    """Why timm cannot be used here, or ''."""
    try:
        import timm  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return ''
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = ToolParser(description='Training and inference speed and memory on one GPU')
    p.add_argument('--iters', type=number_in_range(int, 2), default=50,
                   help='training iterations per config, >= 2 (default 50)')
    p.add_argument('--warmup', type=number_in_range(int, 1), default=10,
                   help='iterations left out of the timing, >= 1 (default 10)')
    p.add_argument('--images', type=number_in_range(int, 1), default=8,
                   help='2048x2048 images for the inference timing (default 8)')
    p.add_argument('--out', default='work_dirs/gpu_check',
                   help='data, work dirs and gpu_check.md go here')
    p.add_argument('--workers', type=number_in_range(int, 0), default=8,
                   help='training data-loader workers per config (default 8)')
    p.add_argument('--tiny', action='store_true',
                   help='CPU, 64x64, 2 iterations: check the script without a GPU')
    p.add_argument('--configs', nargs='+', choices=CONFIGS, metavar='CONFIG',
                   help='train only these (paths under custom_configs/; default: all)')
    return p.parse_args(argv)


class Clock:
    """Times training iterations after ``warmup`` of them (a hook, registered directly)."""

    def __init__(self, warmup: int, cuda: bool):
        from mmengine.hooks import Hook

        clock = self

        class _Hook(Hook):
            priority = 'VERY_LOW'

            def before_train(self, runner):
                clock.begin = time.perf_counter()

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                if runner.iter + 1 == warmup:
                    clock.sync()
                    clock.start = time.perf_counter()
                clock.last = runner.iter + 1
                if runner.iter + 1 == runner.max_iters:
                    clock.sync()
                    clock.stop = time.perf_counter()

        self.hook = _Hook()
        self.cuda = cuda
        self.warmup = warmup
        self.begin = self.start = self.stop = None
        self.last = 0

    def sync(self):
        if self.cuda:
            import torch
            torch.cuda.synchronize()

    def rate(self) -> float:
        return (self.last - self.warmup) / (self.stop - self.start)


def small_pipeline(pipeline, size):
    """The config's pipeline at ``size`` (tiny mode)."""
    for step in pipeline:
        if step['type'] in ('RandomResize', 'Resize'):
            step['scale'] = size
        elif step['type'] == 'RandomCrop':
            step['crop_size'] = size
        elif step['type'] == 'MultiLabelPad':
            step['size'] = size
    return pipeline


def train_config(name, data_root, work_dir, args, cuda):
    from mmengine.config import Config

    from mmseg_ext.config.model import skip_pretrained
    from mmseg_ext.training.runner import enable_amp
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', name))
    skip_pretrained(cfg.model)
    if needs_timm(cfg):
        cfg.model.backbone.pretrained = False
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.num_folds = 3
    cfg.train_dataloader.num_workers = 0 if args.tiny else args.workers
    cfg.train_dataloader.persistent_workers = cfg.train_dataloader.num_workers > 0
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters,
                         val_interval=args.iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    cfg.default_hooks.logger.interval = 10
    cfg.log_level = 'WARNING'
    if args.tiny:
        size = (64, 64)
        small_pipeline(cfg.train_dataloader.dataset.pipeline, size)
        cfg.model.data_preprocessor.size = size
        if cfg.model.backbone.get('img_size') is not None:
            cfg.model.backbone.img_size = size
        if cfg.model.backbone.get('drop_path_rate') is not None:
            cfg.model.backbone.drop_path_rate = 0.0
    if cuda:
        enable_amp(cfg)
    return cfg


def inference_rate(data_root, images, args, cuda):
    """UperNet-BEiT slide-window inference of whole images: images/s, peak memory."""
    from mmengine.config import Config

    from mmseg_ext.config.model import skip_pretrained
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', 'upernet_beit.py'))
    skip_pretrained(cfg.model)
    if args.tiny:
        size = (64, 64)
        cfg.model.backbone.img_size = size
        cfg.model.data_preprocessor.size = size
        cfg.model.data_preprocessor.test_cfg = dict(size=size)
        cfg.model.test_cfg.crop_size = size
        cfg.model.test_cfg.stride = (43, 43)
    return images_per_second(cfg.model, images, cuda)


def whole_inference_rate(name, images, args, cuda):
    """Whole-image inference of ``name`` at the images' full size (no resize, padded to
    the model's size divisor): images/s, peak memory."""
    from mmengine.config import Config

    from mmseg_ext.config.model import skip_pretrained
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', name))
    skip_pretrained(cfg.model)
    cfg.model.backbone.pretrained = False
    return images_per_second(cfg.model, images, cuda)


def images_per_second(model_cfg, images, cuda):
    """Inference of whole image files by the segmentor of ``model_cfg`` (its own test
    mode: slide windows or the whole padded image; no resize): images/s after one
    warm-up image, and the peak GPU memory."""
    import torch
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    device = 'cuda' if cuda else 'cpu'
    model = MODELS.build(model_cfg).to(device).eval()
    pipeline = Compose([dict(type='LoadImageFromFileChecked'),
                        dict(type='PackMultiLabelSegInputs')])
    batches = [pipeline(dict(img_path=p)) for p in images]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    amp = torch.autocast('cuda', dtype=torch.float16) if cuda else torch.autocast(
        'cpu', enabled=False)
    with torch.no_grad(), amp:
        model.test_step(dict(inputs=[batches[0]['inputs']],
                             data_samples=[batches[0]['data_samples']]))  # warm-up
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for b in batches:
            model.test_step(dict(inputs=[b['inputs']], data_samples=[b['data_samples']]))
        if cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    memory = _mib(torch.cuda.max_memory_allocated()) if cuda else 'n/a (CPU)'
    return len(batches) / seconds, memory


def _mib(num_bytes: int) -> str:
    return f'{num_bytes / 2 ** 20:.0f} MiB'


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if not args.tiny and args.warmup >= args.iters:
        raise UsageError(f'--warmup {args.warmup} leaves no iteration to time: it must be '
                         f'less than --iters {args.iters}')
    from mmseg_ext import register_all_modules
    register_all_modules()  # environment check first: one line when it cannot work
    import glob

    import torch
    from mmengine.runner import Runner

    from mmseg_ext.io.atomic import atomic_write_text
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    from mmseg_ext.training.stages import own_run_names
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        raise UsageError('no CUDA GPU: run on a GPU machine, or --tiny to check the script '
                         'on the CPU')
    if args.tiny:
        args.iters, args.warmup, args.images = 2, 1, 2
    size = (128, 128) if args.tiny else (2048, 2048)
    data = osp.join(args.out, 'data_tiny' if args.tiny else 'data')
    if not osp.isdir(osp.join(data, 'train')):
        write_synthetic_handbone(data, num_patients=3 if args.tiny else 6,
                                 images_per_patient=2, size=size,
                                 num_test_patients=1 if args.tiny else args.images // 2,
                                 progress=False)
    setting = ('CPU, 64x64 crops, fp32 (--tiny)' if args.tiny else
               f'{torch.cuda.get_device_name(0)}, the config\'s crops, AMP, '
               f'{args.workers} loader workers')
    rows = []
    no_timm = timm_missing()
    for name in args.configs or CONFIGS:
        cfg = train_config(name, osp.join(data, 'train'), osp.join(args.out, name[:-3]),
                           args, cuda)
        if needs_timm(cfg) and no_timm:
            rows.append(f'| `custom_configs/{name}` | train | skipped: timm not installed '
                        f'({no_timm}) | | {setting} |')
            print(rows[-1], flush=True)
            continue
        clock = Clock(args.warmup, cuda)
        own_run_names(cfg)  # one process, many runners: each its own logs and scalars
        built = time.perf_counter()
        runner = Runner.from_cfg(cfg)
        runner.register_hook(clock.hook)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        runner.train()
        memory = _mib(torch.cuda.max_memory_allocated()) if cuda else 'n/a (CPU)'
        batch = cfg.train_dataloader.batch_size
        crop = cfg.model.data_preprocessor.get('size') or ('?', '?')
        rows.append(f'| `custom_configs/{name}` | train {crop[0]}x{crop[1]}, batch {batch}, '
                    f'iterations '
                    f'{args.warmup + 1}-{args.iters} | {clock.rate():.2f} it/s | '
                    f'{memory} | {setting} |')
        print(rows[-1], flush=True)
        torn = time.perf_counter()
        del runner
        if cuda:
            torch.cuda.empty_cache()
        # where a config's wall time goes (the 2026-11-30 H200 run spent ~75 s a config
        # outside the timed iterations): not part of the table
        print(f'  wall time: runner built and set up {clock.begin - built:.1f} s, start-up and '
              f'{args.warmup} warm-up iterations {clock.start - clock.begin:.1f} s, '
              f'timed iterations {clock.stop - clock.start:.1f} s, after training '
              f'{time.perf_counter() - clock.stop:.1f} s (of which teardown '
              f'{time.perf_counter() - torn:.1f} s)', flush=True)
    images = sorted(glob.glob(osp.join(data, 'test', 'DCM', '*', '*.png')))[:args.images]
    rate, memory = inference_rate(data, images, args, cuda)
    h, w = size
    rows.append(f'| `custom_configs/upernet_beit.py` | slide-window inference of {h}x{w} '
                f'images ({len(images)}) | {rate:.2f} img/s | {memory} | {setting} |')
    print(rows[-1], flush=True)
    if no_timm:
        rows.append(f'| `custom_configs/{WHOLE_INFERENCE}` | whole-image inference | '
                    f'skipped: timm not installed ({no_timm}) | | {setting} |')
    else:
        rate, memory = whole_inference_rate(WHOLE_INFERENCE, images, args, cuda)
        rows.append(f'| `custom_configs/{WHOLE_INFERENCE}` | whole-image inference of '
                    f'{h}x{w} images ({len(images)}), full-resolution output | {rate:.2f} '
                    f'img/s | {memory} | {setting} |')
    print(rows[-1], flush=True)
    table = '\n'.join(['| config | what | speed | peak GPU memory | setting |',
                       '|---|---|---|---|---|', *rows]) + '\n'
    out = osp.join(args.out, 'gpu_check.md')
    atomic_write_text(out, table, force=True)
    print(f'\n{table}\nwritten to {out}')
    return 0


if __name__ == '__main__':
    main()
