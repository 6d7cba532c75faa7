"""Download the pretrained backbone weights the shipped configs name, into pretrain/.

    python tools/get_weights.py beit-base [swin-base hrnetv2-w18 resnet101-v1c | all]
        [--out-dir pretrain] [--url URL] [--force]
    python tools/get_weights.py --list

Each file is checked (the SHA-256 prefix OpenMMLab publishes in its file names) and, for
BEiT, converted to mmseg's key names with mmseg's own converter. It is written under a
hidden temporary name and appears only when complete; a valid file already there is
not downloaded again. Offline or on an HTTP error: one error line naming the URLs tried
and the alternatives, exit 1, nothing left behind.
"""
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main
from mmseg_ext.utils.errors import UsageError


def parse_args(argv=None):
    p = ToolParser(description='Download pretrained backbone weights into pretrain/')
    p.add_argument('names', nargs='*', metavar='NAME', role='text',
                   help='weights to fetch (see --list), or all')
    p.add_argument('--list', action='store_true', help='list the known weights and exit')
    p.add_argument('--out-dir', default='pretrain', role='output',
                   help='where the configs look for them (default: pretrain)')
    p.add_argument('--url', role='url', help='download NAME from this URL instead (a mirror or a '
                   'file:// copy); one NAME only')
    p.add_argument('--config', role='input', help='config whose backbone the file must fit (keys and '
                   'shapes) before it is written (default: the first shipped config that '
                   'uses the weights)')
    p.add_argument('--force', action='store_true',
                   help='download again and replace a file that is already there')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.conflicts('--list', 'NAME', '--url', '--config', '--force',
                why='--list only lists the known weights')
    p.requires('--url', 'NAME', why='the weights the URL serves')
    p.requires('--config', 'NAME', why='the weights to check against it')
    return p.parse_args(argv)


@cli_main(flags={'names': 'NAME'})
def main(argv=None):
    import os.path as osp

    from mmseg_ext import register_all_modules
    register_all_modules()  # the stack's import notices stay off the screen
    from mmseg_ext.models.weights_catalog import WEIGHTS
    from mmseg_ext.training.weights import fetch_weights, resolve_names
    args = parse_args(argv)
    if args.list:
        for w in WEIGHTS.values():
            there = osp.isfile(osp.join(args.out_dir, w.filename))
            print(f'{w.name:15s} {"[present] " if there else ""}{w.filename}\n'
                  f'{"":15s} {w.description}; used by {", ".join(w.used_by)}')
        return 0
    chosen = resolve_names(args.names)
    if args.url and len(chosen) != 1:
        raise UsageError('--url goes with exactly one NAME')
    for w in chosen:
        result = fetch_weights(w, args.out_dir, urls=[args.url] if args.url else None,
                               force=args.force, progress=not args.no_progress,
                               config=args.config)
        what = 'already there and valid' if result.status == 'present' else \
            f'downloaded from {result.source}' + (' and converted' if w.converter else '')
        if result.checked_against:
            what += f'; fits the backbone of {osp.relpath(result.checked_against)}'
        print(f'{w.name}: {result.path} ({what})')
    return 0


if __name__ == '__main__':
    main()
