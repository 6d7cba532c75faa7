"""The failures of the reliability review, reproduced as they were reported: each must now
answer with one ``error:`` line and a non-zero exit, never a traceback, a silently wrong
result, a partial output or a lost one."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from probs_helpers import write_images, write_prob_folder

from mmseg_ext.io.atomic import atomic_open
from mmseg_ext.utils.errors import OutputExistsError

SHAPES = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'
CLASSES = ('a', 'b', 'c')


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith('error')]


def assert_one_line(proc, code=1):
    assert proc.returncode == code, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def probs_for(names, size):
    rng = np.random.default_rng(0)
    return {n: (rng.random((3, *size)), size) for n in names}


# ------------------------------------------------------------- silent wrong output
def test_submission_refuses_probabilities_made_from_other_sized_images(tmp_path):
    """Probabilities of 128x128 copies, written against the real 256x256 images."""
    images = write_images(tmp_path / 'test', {'ID1/a.png': (256, 256), 'ID1/b.png': (256, 256)})
    probs = write_prob_folder(tmp_path / 'probs', probs_for(['ID1/a.png', 'ID1/b.png'],
                                                            (128, 128)), CLASSES)
    proc = run_tool('tools/make_submission.py', probs, '--format', 'handbone', '--img-dir',
                    images, '--out', str(tmp_path / 'sub.csv'), '--no-progress')
    line = assert_one_line(proc)
    assert line == (f'error: {probs}/ID1/a.npz: probabilities are for a 128x128 image '
                    f'(H x W), but {images}/ID1/a.png is 256x256; were they made from '
                    'other copies of the images?')
    assert not (tmp_path / 'sub.csv').exists()


def test_submission_refuses_an_edited_original_size(tmp_path):
    images = write_images(tmp_path / 'test', {'a.png': (40, 50)})
    probs = write_prob_folder(tmp_path / 'probs', {'a.png': (np.zeros((3, 40, 50)),
                                                             (300, 300))}, CLASSES)
    proc = run_tool('tools/make_submission.py', probs, '--format', 'handbone', '--img-dir',
                    images, '--out', str(tmp_path / 'sub.csv'), '--no-progress')
    assert 'is 40x50' in assert_one_line(proc)


def _shapes_checkpoint(tmp_path, edit):
    """An untrained checkpoint of the demo model, edited by ``edit(state_dict)``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_ext  # noqa: F401
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(osp.join(REPO, SHAPES)).model)
    state = edit(dict(model.state_dict()))
    path = tmp_path / 'edited.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    return str(path)


@pytest.mark.parametrize('edit, expected', [
    (lambda s: {**s, 'decode_head.conv_seg.weight': s['decode_head.conv_seg.weight'][:3],
                'decode_head.conv_seg.bias': s['decode_head.conv_seg.bias'][:3]},
     '2 size mismatches (decode_head.conv_seg.weight: checkpoint 3x32x1x1, model 4x32x1x1'),
    (lambda s: {'renamed.' + k: v for k, v in s.items()}, 'missing keys (backbone.'),
], ids=['head-cut', 'keys-renamed'])
def test_test_tool_refuses_a_checkpoint_that_does_not_fit(tmp_path, edit, expected):
    ckpt = _shapes_checkpoint(tmp_path, edit)
    proc = run_tool('tools/test.py', SHAPES, ckpt, '--work-dir', str(tmp_path / 'w'))
    line = assert_one_line(proc)
    assert line.startswith(f'error: {ckpt}: does not fit the model of {SHAPES} (')
    assert expected in line


def test_twelve_bit_data_in_a_sixteen_bit_png_is_not_black(tmp_path):
    from mmseg_ext.datasets.transforms import LoadImageFromFileChecked
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    path = str(tmp_path / 'xray.png')
    cv2.imwrite(path, eight.astype(np.uint16) * 16)          # 12-bit values, 16-bit file
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).dtype == np.uint16
    stock = cv2.imread(path, cv2.IMREAD_COLOR)
    assert stock.max() <= 15                                  # what stock loading sees
    img = LoadImageFromFileChecked()(dict(img_path=path))['img']
    assert img.dtype == np.uint8 and img.shape == (30, 40, 3)
    # round(16 v * 255 / 4095) differs from v by at most 1
    assert np.abs(img[..., 0].astype(int) - eight).max() <= 1
    fixed = LoadImageFromFileChecked(bit_depth=16)(dict(img_path=path))['img']
    assert np.abs(fixed[..., 0].astype(int) - np.rint(eight * 16.0 * 255 / 65535)).max() <= 1
    # 8-bit files load exactly as stock loads them
    cv2.imwrite(str(tmp_path / 'eight.png'), eight)
    same = LoadImageFromFileChecked()(dict(img_path=str(tmp_path / 'eight.png')))['img']
    assert np.array_equal(same, cv2.imread(str(tmp_path / 'eight.png'), cv2.IMREAD_COLOR))


# ------------------------------------------------------------- one line, no traceback
@pytest.mark.parametrize('content', ['[]', '"hello"', '3'])
def test_index_that_is_not_an_object(tmp_path, content):
    probs = write_prob_folder(tmp_path / 'probs', probs_for(['a.png'], (4, 5)), CLASSES)
    with open(osp.join(probs, 'index.json'), 'w') as f:
        f.write(content)
    proc = run_tool('tools/make_submission.py', probs, '--format', 'handbone', '--out',
                    str(tmp_path / 'sub.csv'))
    assert assert_one_line(proc).startswith(f'error: {probs}/index.json: not a valid index')


def _read_only_mount():
    with open('/proc/mounts') as f:
        for line in f:
            fields = line.split()
            if 'ro' in fields[3].split(',') and osp.isdir(fields[1]) \
                    and fields[2] in ('tmpfs', 'ext4', 'overlay', 'xfs', 'btrfs'):
                return fields[1]
    return None


@pytest.mark.parametrize('where', ['no-permission', 'read-only'])
@pytest.mark.parametrize('tool', ['make_submission', 'ensemble'])
def test_unwritable_output_folder(tmp_path, where, tool):
    if where == 'no-permission':
        folder = '/sys'                  # refuses new files even to root
        if os.access(folder, os.W_OK) and os.getuid() != 0:
            pytest.skip('/sys is writable here')
    else:
        folder = _read_only_mount()
        if folder is None:
            pytest.skip('no read-only mount on this machine')
    probs = write_prob_folder(tmp_path / 'p1', probs_for(['a.png'], (4, 5)), CLASSES)
    if tool == 'make_submission':
        out = osp.join(folder, 'sub.csv')
        proc = run_tool('tools/make_submission.py', probs, '--format', 'handbone', '--out',
                        out, '--no-progress')
    else:
        other = write_prob_folder(tmp_path / 'p2', probs_for(['a.png'], (4, 5)), CLASSES,
                                  dtype='float16')  # another run's files, not a copy
        out = osp.join(folder, 'ens')
        proc = run_tool('tools/ensemble.py', probs, other, '--out-dir', out, '--no-progress')
    line = assert_one_line(proc)
    assert line.startswith(f'error: {out}: cannot write the output (')
    assert not osp.exists(out)


def test_config_with_a_syntax_error(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(type="EncoderDecoder"\n')
    torch.save({'state_dict': {}}, tmp_path / 'c.pth')
    proc = run_tool('tools/inference.py', str(config), str(tmp_path / 'c.pth'),
                    '--img-dir', str(tmp_path / 'imgs'), '--out-dir', str(tmp_path / 'o'))
    assert assert_one_line(proc).startswith(f'error: {config}: invalid Python in the config')


def test_truncated_checkpoint(tmp_path):
    good = _shapes_checkpoint(tmp_path, lambda s: s)
    data = open(good, 'rb').read()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    proc = run_tool('tools/test.py', SHAPES, str(cut), '--work-dir', str(tmp_path / 'w'))
    assert assert_one_line(proc).startswith(
        f'error: {cut}: not a complete torch checkpoint (')


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_error(404, 'Not Found')

    def log_message(self, *args):
        pass


def test_checkpoint_url_that_answers_404(tmp_path):
    server = HTTPServer(('127.0.0.1', 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{server.server_port}/no/such.pth'
        proc = run_tool('tools/test.py', SHAPES, url, '--work-dir', str(tmp_path / 'w'),
                        env={'TORCH_HOME': str(tmp_path / 'hub')})
    finally:
        server.shutdown()
    assert assert_one_line(proc) == f'error: {url}: download failed (HTTP 404 Not Found)'


def test_amp_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    proc = run_tool('tools/train.py', SHAPES, '--amp', '--work-dir', str(tmp_path / 'w'))
    assert assert_one_line(proc, code=2) == ('error: --amp: automatic mixed precision needs a CUDA '
                                     'GPU, and torch sees none on this machine')


# ------------------------------------------------------------- partial or lost output
_SLOW_WRITER = '''
import sys, time
sys.path.insert(0, {repo!r})
from mmseg_ext.io.atomic import atomic_open
from mmseg_ext.io.staged_dir import StagedDir
from mmseg_ext.utils.cli import cli_main

@cli_main
def main():
    with StagedDir({folder!r}) as staged, atomic_open({file!r}) as f:
        open(staged.file('a.txt'), 'w').write('partial')
        f.write('partial')
        f.flush()
        print('writing', flush=True)
        time.sleep(60)
        staged.commit()

main()
'''


STOPS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]


def _default_hangup():
    """In a child: SIGHUP as a terminal session gives it (the test runner itself may
    run under ``nohup``, whose ignored SIGHUP children inherit)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def default_hangup():
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize('sig, code', STOPS)
def test_signal_removes_staged_outputs(tmp_path, sig, code):
    """What every tool does on SIGTERM (kill, schedulers, CI), SIGINT (Ctrl-C) and
    SIGHUP (round T's T-1: a closed terminal or a dropped ssh session; before, it
    killed the tool and left the hidden staging folder): the staged file and folder
    are removed, one line, exit 128 + signal."""
    script = tmp_path / 'slow.py'
    script.write_text(_SLOW_WRITER.format(repo=REPO, folder=str(tmp_path / 'out_dir'),
                                          file=str(tmp_path / 'out.csv')))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_hangup)
    assert proc.stdout.readline().strip() == 'writing'
    hidden = [n for n in os.listdir(tmp_path) if n.startswith('.')]
    assert len(hidden) == 2                       # the staged folder and file exist
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert err.strip() == 'error: interrupted'
    assert sorted(os.listdir(tmp_path)) == ['slow.py']


@pytest.mark.parametrize('sig, code', STOPS)
def test_signal_is_not_swallowed_by_a_broad_except(sig, code, default_hangup):
    """A signal that arrives inside ``try: ... except Exception`` still stops the tool.

    tqdm starts its monitor thread in such a block; a SIGTERM that landed there was
    swallowed (tqdm warned "disabling monitor support ... interrupted (SIGTERM)") and
    make_submission.py went on to exit 0."""
    from mmseg_ext.utils.cli import cli_main

    @cli_main
    def tool():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler runs here
        except Exception:  # noqa: BLE001  (what a library may do)
            return 0
        return 0

    with pytest.raises(SystemExit) as stop:
        tool()
    assert stop.value.code == code


def test_a_hangup_ignored_by_nohup_stays_ignored():
    """``nohup`` ignores SIGHUP so that a run outlives its terminal: the tools keep it
    ignored (SIGINT and SIGTERM are theirs whatever the parent set)."""
    from mmseg_ext.utils.cli import cli_main
    seen = {}

    @cli_main
    def tool():
        seen['hup'] = signal.getsignal(signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.2)
        return 0

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with pytest.raises(SystemExit) as stop:
            tool()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert stop.value.code == 0 and seen['hup'] == signal.SIG_IGN


def test_sigterm_during_a_real_submission(tmp_path):
    """The same through make_submission.py on enough images to be caught mid-write."""
    names = [f'ID{i:03d}/img{i}.png' for i in range(300)]
    probs = write_prob_folder(tmp_path / 'probs', probs_for(names, (64, 64)), CLASSES)
    out = tmp_path / 'out' / 'sub.csv'
    proc = subprocess.Popen([sys.executable, 'tools/make_submission.py', probs, '--format',
                             'handbone', '--out', str(out), '--no-progress'], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not (
            out.parent.is_dir() and any(n.endswith('.tmp') for n in os.listdir(out.parent))):
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.skip('the submission finished before it could be interrupted')
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == 'error: interrupted'
    assert not out.parent.exists()  # the run made it, and leaves nothing (round AM, AM-6)


def test_second_writer_does_not_replace_the_first(tmp_path):
    """Two runs writing one new output: the one that finishes second is refused."""
    target = tmp_path / 'sub.csv'
    with pytest.raises(OutputExistsError, match='appeared while this run was writing it'):
        with atomic_open(str(target)) as f:
            f.write('second run')
            target.write_text('first run')     # the other run finished meanwhile
    assert target.read_text() == 'first run'
    assert os.listdir(tmp_path) == ['sub.csv']


def test_coco_to_masks_leaves_nothing_on_an_error_and_reruns(tmp_path):
    from mmseg_ext.datasets.synthetic.coco import make_trash_coco
    root = str(tmp_path / 'trash')
    ann = make_trash_coco(root, num_train=12, size=(48, 40))['train']
    coco = json.load(open(ann))
    sixth = osp.join(root, coco['images'][5]['file_name'])
    original = cv2.imread(sixth)
    cv2.imwrite(sixth, cv2.resize(original, (20, 20)))          # image 6 of 12 is wrong
    out = tmp_path / 'masks'
    proc = run_tool('tools/coco_to_masks.py', ann, str(out), '--img-root', root)
    assert 'image is 20x20' in assert_one_line(proc)
    assert not out.exists() and [n for n in os.listdir(tmp_path) if n.startswith('.')] == []
    cv2.imwrite(sixth, original)
    proc = run_tool('tools/coco_to_masks.py', ann, str(out), '--img-root', root)
    assert proc.returncode == 0, proc.stderr
    assert len([p for p in out.rglob('*.png')]) == 12


@pytest.mark.parametrize('args, message', [
    (['tools/tune_thresholds.py', 'p', '--gt', 'g', '--default', '2'],
     'argument --default: 2 is outside [0, 1]'),
    (['tools/tune_thresholds.py', 'p', '--gt', 'g', '--default', '-1'],
     'argument --default: -1 is outside [0, 1]'),
    (['tools/visualize.py', 'overlay', 'p', '--img-dir', 'i', '--out-dir', 'o', '--alpha', '5'],
     'argument --alpha: 5 is outside [0, 1]'),
    (['tools/visualize.py', 'overlay', 'p', '--img-dir', 'i', '--out-dir', 'o',
      '--outline', '-3'], 'argument --outline: -3 is outside [0, 100]'),
    (['tools/visualize.py', 'chart', 'm.json', '--out', 'c.png', '--size', '100000', '100000'],
     'argument --size: 100000 is outside [100, 8000]'),
    (['tools/pseudo_label.py', 'p', '--out-dir', 'o', '--max-uncertain', '-1'],
     'argument --max-uncertain: -1 is outside [0, 1]'),
    (['tools/pseudo_label.py', 'p', '--out-dir', 'o', '--epsilon', '-3'],
     'argument --epsilon: -3 is outside [0, inf]'),
], ids=['default-2', 'default-neg', 'alpha', 'outline', 'chart-size', 'max-uncertain',
        'epsilon'])
def test_out_of_range_options_are_refused(args, message):
    proc = run_tool(*args)
    line = assert_one_line(proc, code=2)
    assert message in line and line.endswith('(see --help)')


def test_check_shows_progress(tmp_path):
    images = write_images(tmp_path / 'test', {'a.png': (4, 5)})
    csv = tmp_path / 'sub.csv'
    csv.write_text('image_name,class,rle\n' + ''.join(f'a.png,{c},\n' for c in CLASSES))
    proc = run_tool('tools/make_submission.py', '--check', str(csv), '--format', 'handbone',
                    '--img-dir', images, '--classes', ','.join(CLASSES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'check: 100%' in proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(f'check OK: {csv}: 3 rows')
