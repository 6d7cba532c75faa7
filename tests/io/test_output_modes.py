"""Published outputs get the mode of an ordinary new file under the umask (0644 under
umask 022), whatever path wrote them: temporary files (mkstemp: 0600) renamed into place
must not stay private."""
import hashlib
import os
import os.path as osp
import stat

import numpy as np
import pytest
from probs_helpers import write_prob_folder

from mmseg_ext.models.weights_catalog import PretrainedWeights
from mmseg_ext.training.weights import fetch_weights


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o002])
def umask(request, monkeypatch):
    import mmseg_ext.io.staging as staging
    old = os.umask(request.param)
    monkeypatch.setattr(staging, '_UMASK', None)  # read again under this umask
    yield request.param
    os.umask(old)


def _fake_weights(tmp_path):
    """A registry entry for a small file served from ``tmp_path`` (checksum only)."""
    data = b'weights'
    src = tmp_path / 'src.pth'
    src.write_bytes(data)
    return PretrainedWeights(name='fake', filename='fake.pth', urls=(src.as_uri(),),
                             check_key='x', override='model.pretrained=None',
                             description='test',
                             sha256_prefix=hashlib.sha256(data).hexdigest()[:8])


def _plain(folder):
    path = osp.join(folder, 'plain.txt')
    with open(path, 'w') as f:
        f.write('x')
    return _mode(path)


def test_each_kind_of_output_has_the_mode_of_a_plain_file(tmp_path, umask):
    import torch

    from mmseg_ext.io.checkpoint_backend import AtomicLocalBackend
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.visualization.charts import bar_chart
    out = tmp_path / 'out'
    out.mkdir()
    expected = _plain(str(out))
    assert expected == 0o666 & ~umask

    # checkpoint, through the backend the training tools select for CheckpointHook
    buf = __import__('io').BytesIO()
    torch.save({'state_dict': {'w': torch.zeros(2)}}, buf)
    ckpt = out / 'iter_2.pth'
    AtomicLocalBackend().put(buf.getvalue(), ckpt)
    # probability folder (.npz + index.json) and the CSV made from it
    probs = write_prob_folder(out / 'probs', {
        'ID001/a.png': (np.full((3, 4, 4), 0.9, np.float32), (4, 4))},
        ['Trapezium', 'Pisiform', 'Radius'])
    csv = out / 'sub.csv'
    make_submission(probs, 'handbone', str(csv), progress=False)
    # a chart PNG
    chart = out / 'chart.png'
    bar_chart({'Dice': {'a': 0.5, 'b': 0.7}}, str(chart))
    # a downloaded weight file
    fetched = fetch_weights(_fake_weights(tmp_path), str(out / 'pretrain'),
                            progress=False).path

    npz = [osp.join(dp, f) for dp, _, fs in os.walk(probs) for f in fs if f.endswith('.npz')]
    files = {'checkpoint': ckpt, 'csv': csv, 'npz': npz[0], 'index': osp.join(probs,
             'index.json'), 'chart': chart, 'weights': fetched}
    assert {k: oct(_mode(p)) for k, p in files.items()} == \
        {k: oct(expected) for k in files}
    # folders made on the way have the mode of a plain new folder
    plain_dir = tmp_path / 'plain_dir'
    plain_dir.mkdir()
    assert oct(_mode(probs)) == oct(_mode(plain_dir))


def test_synthetic_dataset_folder_is_not_private(tmp_path, umask):
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    plain_dir = tmp_path / 'plain_dir'
    plain_dir.mkdir()
    out = tmp_path / 'data'
    write_synthetic_handbone(str(out), num_patients=2, images_per_patient=1,
                             num_test_patients=1, size=(32, 32), progress=False)
    assert oct(_mode(out)) == oct(_mode(plain_dir))


def test_existing_folder_or_broken_link_is_named_as_such(tmp_path):
    from mmseg_ext.io.atomic import atomic_write_text
    from mmseg_ext.utils.errors import OutputError
    (tmp_path / 'dir.csv').mkdir()
    with pytest.raises(OutputError, match=r'dir\.csv: is a folder, expected a file name'):
        atomic_write_text(str(tmp_path / 'dir.csv'), 'x', force=True)
    os.symlink(str(tmp_path / 'nowhere'), str(tmp_path / 'link.csv'))
    with pytest.raises(OutputError, match=r'link\.csv: already exists'):
        atomic_write_text(str(tmp_path / 'link.csv'), 'x')


@pytest.mark.parametrize('what', ['folder', 'broken-link'])
def test_download_onto_a_folder_or_broken_link_names_it(tmp_path, what):
    """Not 'appeared while this run was writing it': the thing was there before."""
    from mmseg_ext.utils.errors import OutputError
    weights = _fake_weights(tmp_path)
    out = tmp_path / 'pretrain'
    out.mkdir()
    if what == 'folder':
        (out / 'fake.pth').mkdir()
        message = 'is a folder, expected a file name'
    else:
        os.symlink(str(tmp_path / 'nowhere.pth'), str(out / 'fake.pth'))
        message = 'is a broken symbolic link'
    with pytest.raises(OutputError, match=message):
        fetch_weights(weights, str(out), progress=False)
    assert sorted(os.listdir(out)) == ['fake.pth']  # no temporary file left
