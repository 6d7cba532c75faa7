"""tools/benchmark/bench_semi_room.py: labelled subsets by ID folder, nested per seed,
never from the validation fold; the room table from the arms' own results (the real
chest X-rays at smoke-test size; skipped without them)."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from conftest import REPO, run_tool, shared_data

sys.path.insert(0, osp.join(REPO, 'tools', 'benchmark'))
import bench_semi_room as bench  # noqa: E402


def test_labelled_subsets_are_whole_id_folders_nested_per_seed():
    pool = [f'ID{i:03d}/{name}' for i in range(16) for name in ('a', 'b')]
    for seed in (0, 1):
        subsets = {f: bench.labelled_subset(pool, f, seed) for f in (8, 4, 2, 1)}
        assert [len(subsets[f]) for f in (8, 4, 2, 1)] == [4, 8, 16, 32]  # 2, 4, 8, 16 IDs
        for small, big in ((8, 4), (4, 2), (2, 1)):
            assert set(subsets[small]) <= set(subsets[big])
        ids = {s.split('/')[0] for s in subsets[4]}
        assert {s for s in pool if s.split('/')[0] in ids} == set(subsets[4])  # whole IDs
    assert bench.labelled_subset(pool, 8, 0) != bench.labelled_subset(pool, 8, 1)
    assert bench.labelled_subset(pool, 100, 0) == [s for s in pool if s.startswith(
        bench.labelled_subset(pool, 100, 0)[0].split('/')[0] + '/')]  # at least one ID


ROOM_ARGV = ['--tiny', '--iters', '3', '--fractions', '8', '1', '--seeds', '0', '1',
             '--max-val-images', '2']


@pytest.fixture(scope='module')
def tiny_room(tmp_path_factory):
    """The room's smoke-test run: ``(work dir, its process)``."""
    shared_data('jsrt_chest')
    work = tmp_path_factory.mktemp('room') / 'w'
    proc = run_tool('tools/benchmark/bench_semi_room.py', '--work-dir', str(work),
                    *ROOM_ARGV, subprocess_run=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


@pytest.mark.slow
def test_the_room_table_is_computed_from_the_arms(tiny_room):
    work, proc = tiny_room
    argv = ['--work-dir', str(work), *ROOM_ARGV]
    val = {s.split('/')[0] for s in open(work / 'splits' / 'val.txt').read().split()}
    results = {}
    for name in ('1of8_seed0', '1of8_seed1', '1of1_seed0', '1of1_seed1'):
        stems = open(work / 'splits' / f'{name}.txt').read().split()
        assert not {s.split('/')[0] for s in stems} & val  # never the validation fold
        results[name] = json.load(open(work / name / 'result.json'))
        assert results[name]['iters'] == 3  # --iters, not --tiny's default of 2
        assert osp.isfile(work / name / 'iter_3.pth')
        assert results[name]['images'] == len(stems)
    assert results['1of1_seed0']['images'] == results['1of1_seed1']['images'] == 98
    assert results['1of8_seed0']['images'] == 12  # round(49 IDs / 8) = 6 IDs of 2 images
    dice = {k: r['metrics']['mDice'] for k, r in results.items()}
    gap = (dice['1of1_seed0'] + dice['1of1_seed1']) / 2 - (
        dice['1of8_seed0'] + dice['1of8_seed1']) / 2
    row = next(line for line in proc.stdout.splitlines() if line.startswith('| 1/8 | 12 |'))
    assert float(row.split('|')[5]) == pytest.approx(gap, abs=6e-5)
    assert float(row.split('|')[3].split()[0]) == pytest.approx(
        np.mean([dice['1of8_seed0'], dice['1of8_seed1']]), abs=6e-5)
    # a second run reuses every finished arm
    stamp = os.stat(work / '1of8_seed0' / 'result.json').st_mtime_ns
    again = run_tool('tools/benchmark/bench_semi_room.py', *argv, subprocess_run=True,
                     timeout=300)
    assert again.returncode == 0 and '$ ' not in again.stdout
    assert os.stat(work / '1of8_seed0' / 'result.json').st_mtime_ns == stamp
    # ... and refuses arms trained for another budget
    other = run_tool('tools/benchmark/bench_semi_room.py', *argv, '--iters', '4',
                     subprocess_run=True, timeout=300)
    assert other.returncode != 0 and 'trained for 3 iterations, not 4' in other.stderr
    # ... or with other --cfg-options (a loss change under test gets its own work dir)
    other = run_tool('tools/benchmark/bench_semi_room.py', *argv, '--cfg-options',
                     'train_cfg.val_interval=1', subprocess_run=True, timeout=300)
    assert other.returncode != 0 and "trained with --cfg-options [], not " \
        "['train_cfg.val_interval=1']" in other.stderr
    # ... or with another config (CutMix arms get their own work dir)
    cutmix = 'custom_configs/jsrt/unet-s5-tiny_multilabel_cutmix_1xb4-1k_jsrt-chest-256x256.py'
    assert results['1of8_seed0']['config'] == bench.CONFIG
    other = run_tool('tools/benchmark/bench_semi_room.py', *argv, '--config', cutmix,
                     subprocess_run=True, timeout=300)
    assert other.returncode != 0 and f'trained with the config {bench.CONFIG}, not ' \
        f'{cutmix}' in other.stderr
    assert os.stat(work / '1of8_seed0' / 'result.json').st_mtime_ns == stamp


@pytest.mark.slow
def test_the_methods_train_on_the_rooms_labelled_images_and_report_their_share(
        tiny_room, tmp_path):
    """bench_semi_methods.py: each method at the room's fraction sees exactly that arm's
    labelled images, the rest of the pool unlabelled (here its first 6), and the share of
    the room in its table is (method - labelled-only) / (all - labelled-only) of the
    arms' results."""
    room_dir, work = tiny_room[0], tmp_path / 'methods'
    proc = run_tool('tools/benchmark/bench_semi_methods.py', '--room-dir', str(room_dir),
                    '--fraction', '8', '--work-dir', str(work), '--seeds', '0', '--tiny',
                    '--methods', 'unimatch', 'selftrain', 'selftrain-scratch',  # the default
                    '--max-val-images', '2', '--max-unlabelled', '6', subprocess_run=True,
                    timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    labelled = open(room_dir / 'splits' / '1of8_seed0.txt').read().split()
    pool = open(room_dir / 'splits' / '1of1_seed0.txt').read().split()
    assert open(work / 'splits' / '1of8_seed0_labelled.txt').read().split() == labelled
    unlabelled = open(work / 'splits' / '1of8_seed0_unlabelled.txt').read().split()
    assert unlabelled == [s for s in pool if s not in labelled][:6]
    dice = {name: json.load(open(path / 'result.json'))['metrics']['mDice'] for name, path in (
        ('low', room_dir / '1of8_seed0'), ('high', room_dir / '1of1_seed0'),
        ('unimatch', work / 'unimatch_1of8_seed0'), ('selftrain', work / 'selftrain_1of8_seed0'),
        ('selftrain-scratch', work / 'selftrain-scratch_1of8_seed0'))}
    for method in ('unimatch', 'selftrain', 'selftrain-scratch'):
        row = next(line for line in proc.stdout.splitlines()
                   if line.startswith(f'| {method} |'))
        if dice['high'] > dice['low']:
            share = 100 * (dice[method] - dice['low']) / (dice['high'] - dice['low'])
            assert float(row.split('|')[5].strip().rstrip('%')) == pytest.approx(share, abs=0.51)
        else:  # 2 iterations: all labels may score below the fraction
            assert row.split('|')[5].strip() == 'no room'
        assert float(row.split('|')[2]) == pytest.approx(dice[method], abs=6e-5)
    # each self-training arm ran with its own student initialisation
    for method, init in (('selftrain', 'teacher'), ('selftrain-scratch', 'scratch')):
        record = json.load(open(work / f'{method}_1of8_seed0' / 'self_train.json'))
        assert record['student_init'] == init
    # the pseudo-labels of self-training: one JSON per unlabelled image, none for another
    pseudo = work / 'selftrain_1of8_seed0' / 'round1' / 'pseudo' / 'outputs_json'
    named = sorted(str(p.relative_to(pseudo).with_suffix('')) for p in pseudo.rglob('*.json'))
    assert named == sorted(unlabelled)


@pytest.mark.slow
def test_the_teacher_is_continued_with_and_without_unlabelled_images(tiny_room, tmp_path):
    """bench_semi_methods.py's ``unimatch-teacher`` and its control ``finetune-teacher``
    both start from the room's labelled-only checkpoint of that seed and train
    ``--finetune-iters`` more; their iterations count the room's too."""
    from mmengine.config import Config
    room_dir, work = tiny_room[0], tmp_path / 'continued'
    proc = run_tool('tools/benchmark/bench_semi_methods.py', '--room-dir', str(room_dir),
                    '--fraction', '8', '--work-dir', str(work), '--seeds', '0', '--tiny',
                    '--methods', 'finetune-teacher', 'unimatch-teacher',
                    '--finetune-iters', '2', '--max-val-images', '2',
                    '--max-unlabelled', '4', subprocess_run=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    room_iters = json.load(open(room_dir / '1of8_seed0' / 'result.json'))['iters']
    teacher = osp.join(str(room_dir), '1of8_seed0', f'iter_{room_iters}.pth')
    for method in ('finetune-teacher', 'unimatch-teacher'):
        arm = work / f'{method}_1of8_seed0'
        result = json.load(open(arm / 'result.json'))
        assert (result['iters'], result['finetune_iters']) == (room_iters + 2, 2)
        assert (arm / 'iter_2.pth').is_file()  # it trained the 2 iterations itself
        row = next(line for line in proc.stdout.splitlines()
                   if line.startswith(f'| {method} |'))
        assert float(row.split('|')[2]) == pytest.approx(result['metrics']['mDice'],
                                                         abs=6e-5)
        dumped = Config.fromfile(str(next(arm.glob('*.py'))))
        if method == 'finetune-teacher':
            assert dumped.load_from == teacher
            assert dumped.train_dataloader.dataset.ann_file == str(
                work / 'splits' / '1of8_seed0_labelled.txt')
        else:  # the student of the wrapper starts from the teacher's weights
            assert dumped.model.segmentor.init_cfg == dict(type='Pretrained',
                                                           checkpoint=teacher)
            assert dumped.get('load_from') is None
