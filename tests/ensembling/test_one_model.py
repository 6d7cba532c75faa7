"""One model's predictions given twice, told by the folders' ``source`` records (round W:
W-8 a nested ensemble and its own member, W-9 foreign or edited records, W-15 the
message naming both checkpoints)."""
import json
import os.path as osp

import numpy as np
import pytest
from conftest import run_tool

from mmseg_ext.ensembling.ensemble import soft_vote
from mmseg_ext.inference.source import (
    MAX_DEPTH,
    compact_source,
    member_models,
    model_identity,
)
from mmseg_ext.io.probs import ProbFolderWriter
from mmseg_ext.utils.errors import InvalidArgumentError

SHA_A, SHA_B, SHA_C = 'a' * 64, 'b' * 64, 'c' * 64


def record(sha, checkpoint='m.pth', out_size='native', views='v1', **extra):
    return dict(config='c.py', checkpoint=checkpoint, tta=False, out_size=out_size,
                checkpoint_sha256=sha, views=views, **extra)


def folder(root, name, source, size=(8, 8), seed=0):
    """A one-image probability folder with random values (every folder other values,
    so the pixel comparison never refuses it) and ``source`` as its record."""
    rng = np.random.default_rng(seed)
    with ProbFolderWriter(str(root / name), ('a', 'b'), 'multi-label', source=source) as w:
        w.write(rng.random((2, *size)).astype(np.float32), 'x.png', (16, 16))
        w.commit()
    return str(root / name)


def edit_source(path, change):
    """Rewrite ``path``'s index.json with ``change(index)`` applied (an edited folder)."""
    index_path = osp.join(path, 'index.json')
    index = json.load(open(index_path))
    change(index)
    json.dump(index, open(index_path, 'w'))


def test_an_ensemble_counts_as_its_members(tmp_path):
    """W-8: ``ensemble A B -> E`` then ``ensemble E A`` gave A weight 0.75. E's record
    lists its members' records, so E and A (or E and a copy of A's checkpoint at
    another size, or two ensembles sharing A, or an ensemble of an ensemble) are
    refused in one line naming both folders and the member; E with a new model is
    accepted."""
    a = folder(tmp_path, 'A', record(SHA_A), seed=1)
    b = folder(tmp_path, 'B', record(SHA_B, 'n.pth'), seed=2)
    c = folder(tmp_path, 'C', record(SHA_C, 'o.pth'), seed=3)
    e = str(tmp_path / 'E')
    soft_vote([a, b], e, progress=False)
    with pytest.raises(InvalidArgumentError, match=(
            f"^prob_dirs: {e} \\(an ensemble holding {a}\\) and {a} both hold the "
            r"predictions of one model \(m.pth\) with the same views")):
        soft_vote([e, a], str(tmp_path / 'out'), progress=False)
    a_copy = folder(tmp_path, 'A16', record(SHA_A, 'copy.pth', 'original'), (16, 16), 4)
    with pytest.raises(InvalidArgumentError, match='the same checkpoint content: m.pth, '
                       'copy.pth'):
        soft_vote([e, a_copy], str(tmp_path / 'out'), progress=False)
    e2 = str(tmp_path / 'E2')
    soft_vote([a, c], e2, progress=False)
    with pytest.raises(InvalidArgumentError, match=f'{e} \\(an ensemble holding {a}\\) and '
                       f'{e2} \\(an ensemble holding {a}\\) both hold'):
        soft_vote([e, e2], str(tmp_path / 'out'), progress=False)
    nested = str(tmp_path / 'N')  # an ensemble of an ensemble, then A again
    soft_vote([e, c], nested, progress=False)
    with pytest.raises(InvalidArgumentError, match=f'{nested} \\(an ensemble holding {e}\\)'):
        soft_vote([nested, a], str(tmp_path / 'out'), progress=False)
    assert not (tmp_path / 'out').exists()
    summary = soft_vote([e, c], str(tmp_path / 'out'), progress=False)  # a new member
    assert summary.models == 2
    # from the command line: one error line
    proc = run_tool('tools/ensemble.py', e, a, '--out-dir', str(tmp_path / 'cli'),
                    '--no-progress')
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and 'give each once' in lines[0]


def test_nested_members_are_followed_within_bounds():
    """The expansion stops at MAX_DEPTH levels (the rest unknown, never a hang)."""
    leaf = record(SHA_A)

    def chain(depth):
        source = leaf
        for k in range(depth):
            source = dict(ensemble=[dict(probs=f'level{k}', weight=1.0, source=source)])
        return source
    assert [(m.key, via) for m, via in member_models(chain(3))] == [
        (('content', SHA_A, 'v1', 1), 'level2')]
    assert member_models(chain(MAX_DEPTH)) != []
    assert member_models(chain(MAX_DEPTH + 1)) == []
    wide = dict(ensemble=[dict(probs='p', source=leaf)] * 100_000)
    assert 0 < len(member_models(wide)) <= 1000


@pytest.mark.parametrize('field,value', [
    ('checkpoint_sha256', ['x']), ('checkpoint_sha256', 12345), ('views', {'a': 1}),
    ('checkpoint_sha256', 'a' * 1_000_000), ('views', 'v' * 1_000_000)])
def test_a_foreign_identity_field_makes_the_model_unknown(tmp_path, field, value):
    """W-9: a list, a dict, a number or a megabyte where a hash is expected crashed
    with ``TypeError: unhashable type``. Such a field counts as absent: the folder is
    told by its paths (here another checkpoint path: accepted)."""
    a = folder(tmp_path, 'A', record(SHA_A))
    b = folder(tmp_path, 'B', record(SHA_A, 'copy.pth', 'original'), (16, 16), seed=1)
    edit_source(b, lambda index: index['source'].__setitem__(field, value))
    assert soft_vote([a, b], str(tmp_path / 'out'), progress=False).models == 2
    out = open(osp.join(tmp_path, 'out', 'index.json')).read()
    assert len(out) < 10_000  # the megabyte is not copied


@pytest.mark.parametrize('change', [
    lambda s: s.pop('checkpoint'),                       # identified by sha256 + views
    lambda s: s.__setitem__('checkpoint', 'x' * 1_000_000),
    lambda s: s.__setitem__('checkpoint', {'a': 1}),
    lambda s: s.__setitem__('out_size', [1]),
    lambda s: s.__setitem__('tta', 'yes'),
    lambda s: s.__setitem__('config', [1])])
def test_an_edited_path_field_still_names_the_model_by_content(tmp_path, change):
    """W-9: with ``checkpoint_sha256`` and ``views`` intact the model is known whatever
    the other fields hold (a missing ``checkpoint`` let one model through twice), and
    the one-line refusal shows no more than a few hundred characters of them."""
    a = folder(tmp_path, 'A', record(SHA_A))
    b = folder(tmp_path, 'B', record(SHA_A, 'copy.pth', 'original'), (16, 16), seed=1)
    edit_source(b, lambda index: change(index['source']))
    with pytest.raises(InvalidArgumentError) as caught:
        soft_vote([a, b], str(tmp_path / 'out'), progress=False)
    message = str(caught.value)
    assert f'{a} and {b} were predicted by one model' in message
    assert len(message) < 600 and '\n' not in message
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('change', [
    lambda s: s.__setitem__('config', [1]),
    lambda s: s.__setitem__('checkpoint', {'a': 1}),
    lambda s: s.__setitem__('tta', 'yes')])
def test_without_hashes_a_foreign_path_field_makes_the_model_unknown(tmp_path, change):
    """W-9, records without the hashes (told by paths): a field of another type makes
    the model unknown, so the folders are averaged (no TypeError)."""
    old = dict(config='c.py', checkpoint='m.pth', tta=False)
    a = folder(tmp_path, 'A', dict(old, out_size='native'))
    b = folder(tmp_path, 'B', dict(old, out_size='original'), (16, 16), seed=1)
    with pytest.raises(InvalidArgumentError, match='predicted by one model'):
        soft_vote([a, b], str(tmp_path / 'ref'), progress=False)  # intact: refused
    edit_source(b, lambda index: change(index['source']))
    assert soft_vote([a, b], str(tmp_path / 'out'), progress=False).models == 2


@pytest.mark.parametrize('source', ['x' * 1_000_000, [1, 2], None, 7])
def test_a_foreign_record_is_not_copied_into_the_ensemble(tmp_path, source):
    """W-9: a 10 MB string ``source`` was copied verbatim into the ensemble's
    index.json. A record that is not a small JSON object is cut down to its valid model
    fields, with a note."""
    a = folder(tmp_path, 'A', record(SHA_A))
    b = folder(tmp_path, 'B', record(SHA_B), seed=1)
    edit_source(b, lambda index: index.__setitem__('source', source))
    soft_vote([a, b], str(tmp_path / 'out'), progress=False)
    index_path = osp.join(tmp_path, 'out', 'index.json')
    assert osp.getsize(index_path) < 10_000
    members = json.load(open(index_path))['source']['ensemble']
    assert members[0]['source'] == record(SHA_A)  # a sane record is copied whole
    assert members[1]['source'] == ({} if source is None else {
        'omitted': members[1]['source']['omitted']})


def test_compact_source_keeps_valid_fields_and_calibration():
    """An oversized record keeps its valid model fields, its nested members (bounded)
    and the mark of a calibrated fold vote (make_submission refuses thresholds on it)."""
    from mmseg_ext.io.probs import _holds_calibrated
    big = dict(record(SHA_A), junk='x' * 1_000_000, fold_thresholds=[{'a': 0.3}],
               checkpoint=['not a path'])
    out = compact_source(big)
    assert out['checkpoint_sha256'] == SHA_A and out['views'] == 'v1'
    assert 'checkpoint' not in out and 'junk' not in out and 'omitted' in out
    assert _holds_calibrated(out)
    assert model_identity(out).key == ('content', SHA_A, 'v1', 1)
    ens = dict(ensemble=[dict(probs='p', weight=0.5, source=big)], junk='y' * 1_000_000)
    out = compact_source(ens)
    assert len(json.dumps(out)) < 5_000
    assert [m.key for m, _ in member_models(out)] == [('content', SHA_A, 'v1', 1)]


def test_the_refusal_names_both_checkpoints(tmp_path):
    """W-15: one checkpoint under two paths named only the second folder's path."""
    a = folder(tmp_path, 'A', record(SHA_A, '/w/ck.pth'))
    b = folder(tmp_path, 'B', record(SHA_A, '/w/ck_copy.pth', 'original'), (16, 16), 1)
    with pytest.raises(InvalidArgumentError, match=(
            r'predicted by one model \(the same checkpoint content: /w/ck.pth, '
            r'/w/ck_copy.pth\) with the same views')):
        soft_vote([a, b], str(tmp_path / 'out'), progress=False)


# ------------------------------------------------- views hashed by another formula
def versioned(sha, checkpoint='m.pth', out_size='native', views='v1', version=2, **extra):
    """A record of today's tools/inference.py (``views_version`` 2)."""
    return record(sha, checkpoint, out_size, views, views_version=version, **extra)


def test_views_of_two_versions_of_one_checkpoint_are_told_by_their_pixels(tmp_path):
    """X-6: a folder written before the views formula changed (no ``views_version``:
    version 1, hash '5db5...') and a new one of the same checkpoint and views at another
    size (version 2, hash '13b7...') were averaged as two models, exit 0. Hashes of two
    versions are not compared (Y-5: refusing them refused other views too); the pixels
    are, after bringing one folder to the other's size."""
    from mmseg_ext.inference.probmaps import resize_probs
    probs = np.random.default_rng(1).random((2, 8, 8)).astype(np.float32)

    def one_image(name, source, values):
        with ProbFolderWriter(str(tmp_path / name), ('a', 'b'), 'multi-label',
                              source=source) as w:
            w.write(values, 'x.png', (16, 16))
            w.commit()
        return str(tmp_path / name)
    old = one_image('old', record(SHA_A, '/w/ck.pth', 'original', '5db52c2a5701513d'),
                    resize_probs(probs, (16, 16)))
    new = one_image('new', versioned(SHA_A, '/w/ck.pth', 'native', '13b7d1e86c35bd61'),
                    probs)
    for order in ([old, new], [new, old]):
        with pytest.raises(InvalidArgumentError, match='hold the same probabilities on '
                           'every image'):
            soft_vote(order, str(tmp_path / 'out'), progress=False)
    assert not (tmp_path / 'out').exists()
    # other views of the same checkpoint (TTA against none, say): other pixels, voted
    tta = one_image('tta', dict(versioned(SHA_A, '/w/ck.pth', 'native', 'ffff'), tta=True),
                    np.clip(probs * 0.5 + 0.25, 0, 1))
    assert soft_vote([old, tta], str(tmp_path / 'ok'), progress=False).models == 2


def test_records_of_one_version_compare_as_before(tmp_path):
    """Two old records (both version 1) or two new ones (both version 2): other views
    are two members, the same views at two sizes one model given twice."""
    for name, make in (('old', record), ('new', versioned)):
        a = folder(tmp_path, f'{name}_a', make(SHA_A), seed=1)
        b = folder(tmp_path, f'{name}_b', make(SHA_A, views='v2'), seed=2)
        assert soft_vote([a, b], str(tmp_path / f'{name}_out'), progress=False).models == 2
        c = folder(tmp_path, f'{name}_c', make(SHA_A, out_size='original'), (16, 16), 3)
        with pytest.raises(InvalidArgumentError, match=(
                f'^prob_dirs: {a} and {c} were predicted by one model \\(m.pth\\) with the '
                'same views')):
            soft_vote([a, c], str(tmp_path / 'refused'), progress=False)
    a = folder(tmp_path, 'v2_v2', versioned(SHA_A, version=2))  # version 2 written out
    b = folder(tmp_path, 'v2_v2b', versioned(SHA_A, views='v2', version=2), seed=4)
    assert model_identity(record(SHA_A)).views_version == 1
    assert model_identity(versioned(SHA_A)).views_version == 2
    assert soft_vote([a, b], str(tmp_path / 'v2_out'), progress=False).models == 2


def test_an_ensemble_keeps_its_members_views_version(tmp_path):
    """The ensemble's record nests its members' (copied whole, or cut down to their valid
    fields) with their versions; a new folder of an old member's checkpoint is refused
    beside the ensemble (its pixels are averaged away); an ensemble holding both versions of one checkpoint (made
    earlier) beside another model is not refused."""
    old = folder(tmp_path, 'old', record(SHA_A), seed=1)
    b = folder(tmp_path, 'B', versioned(SHA_B, 'n.pth'), seed=2)
    ens = str(tmp_path / 'E')
    soft_vote([old, b], ens, progress=False)
    members = json.load(open(osp.join(ens, 'index.json')))['source']['ensemble']
    assert 'views_version' not in members[0]['source']
    assert members[1]['source']['views_version'] == 2
    # a new folder of the old member's checkpoint: hashes of two versions cannot be
    # compared, nor can the ensemble's averaged pixels (Z-1: voted the model twice)
    new = folder(tmp_path, 'new', versioned(SHA_A, out_size='original'), (16, 16), 3)
    with pytest.raises(InvalidArgumentError) as caught:
        soft_vote([new, ens], str(tmp_path / 'out'), progress=False)
    assert str(caught.value) == (
        f'prob_dirs: {new} and {ens} (an ensemble holding {old}) hold predictions of one '
        'checkpoint (m.pth) whose views were hashed by two versions of '
        "tools/inference.py (2 and 1), and an ensemble's averaged pixels cannot tell "
        "whether they are one model's predictions given twice; re-run "
        f'tools/inference.py for {old} (and ensemble again)')
    assert not (tmp_path / 'out').exists()
    # ... unless the records show other views: TTA against none
    tta = folder(tmp_path, 'tta', dict(versioned(SHA_A, views='v8'), tta=True), seed=6)
    assert soft_vote([tta, ens], str(tmp_path / 'voted'), progress=False).models == 2
    # both versions inside one ensemble (made before this check): not this vote's doing
    both = dict(ensemble=[dict(probs=old, weight=0.5, source=record(SHA_A)),
                          dict(probs='new2', weight=0.5, source=versioned(SHA_A, views='v7'))])
    e2 = folder(tmp_path, 'E2', both, seed=4)
    c = folder(tmp_path, 'C', versioned(SHA_C, 'o.pth'), seed=5)
    assert soft_vote([e2, c], str(tmp_path / 'ok'), progress=False).models == 2
    # an oversized record keeps the version among its valid fields
    out = compact_source(dict(versioned(SHA_A), junk='x' * 1_000_000))
    assert out['views_version'] == 2 and 'junk' not in out
    assert model_identity(out).views_version == 2
    nested = compact_source(dict(ensemble=[dict(probs='p', weight=1.0, source=dict(
        versioned(SHA_A), junk='x' * 1_000_000))], junk='y' * 1_000_000))
    assert [m.views_version for m, _ in member_models(nested)] == [2]


@pytest.mark.parametrize('value', ['2', 2.0, True, 0, -1, [2], {'v': 2}, None, 10 ** 7])
def test_a_foreign_views_version_makes_the_views_unknown(tmp_path, value):
    """A ``views_version`` that is not a whole number in range: the hash it versions
    cannot be read, so ``views`` counts as absent (the folder is told by its paths, here
    another checkpoint path: accepted), never an error; it is not copied."""
    a = folder(tmp_path, 'A', versioned(SHA_A))
    b = folder(tmp_path, 'B', versioned(SHA_A, 'copy.pth', 'original'), (16, 16), seed=1)
    edit_source(b, lambda index: index['source'].__setitem__('views_version', value))
    model = model_identity(json.load(open(osp.join(b, 'index.json')))['source'])
    assert model.key == ('paths', 'c.py', 'copy.pth', False)
    assert soft_vote([a, b], str(tmp_path / 'out'), progress=False).models == 2
    cut = compact_source(dict(versioned(SHA_A), views_version=value, junk='x' * 1_000_000))
    assert 'views_version' not in cut and 'views' not in cut


def test_one_model_on_two_image_folders_is_named_as_other_images(tmp_path):
    """Round AK (AK-8): one model's predictions of two different image folders (their
    files record other ``img_sha256`` under one name) were refused as "one model's
    predictions given twice"; the mistake is the images, and the message says so."""
    from mmseg_ext.io.prob_file import ProbFileError
    rng = np.random.default_rng(0)
    made = []
    for name, image in (('A', 'd' * 64), ('B', 'e' * 64)):
        with ProbFolderWriter(str(tmp_path / name), ('a', 'b'), 'multi-label',
                              source=record(SHA_A)) as w:
            w.write(rng.random((2, 8, 8)).astype(np.float32), 'x.png', (16, 16),
                    img_sha256=image)
            w.commit()
        made.append(str(tmp_path / name))
    with pytest.raises(ProbFileError, match='the folders predicted different images under '
                       'the name x.png'):
        soft_vote(made, str(tmp_path / 'out'), progress=False)
    # the same images: still one model given twice
    with ProbFolderWriter(str(tmp_path / 'C'), ('a', 'b'), 'multi-label',
                          source=record(SHA_A)) as w:
        w.write(rng.random((2, 8, 8)).astype(np.float32), 'x.png', (16, 16),
                img_sha256='d' * 64)
        w.commit()
    with pytest.raises(InvalidArgumentError, match="one model's predictions given twice"):
        soft_vote([made[0], str(tmp_path / 'C')], str(tmp_path / 'out'), progress=False)
    assert not (tmp_path / 'out').exists()
