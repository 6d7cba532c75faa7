"""Round AN of bad inputs (issue 28): trash test.json names matched loosely, port samples
and checks, and a stop signal while a tool is still importing."""
import json

import numpy as np
import pytest
from probs_helpers import write_prob_folder

from mmseg_ext.submission.make import make_submission
from mmseg_ext.utils.class_names import TRASH_CLASSES
from mmseg_ext.utils.errors import DataError


def _one_trash_image(tmp_path):
    probs = np.full((11, 4, 4), 0.01, np.float32)
    probs[3] = 0.9
    return write_prob_folder(tmp_path / 'p', {'b/a.jpg': (probs, (4, 4))}, TRASH_CLASSES,
                             task='multi-class')


def _test_json(tmp_path, *names):
    path = tmp_path / f'test{len(list(tmp_path.glob("test*.json")))}.json'
    path.write_text(json.dumps({'images': [dict(id=i, file_name=n)
                                           for i, n in enumerate(names)]}))
    return str(path)


def test_trash_test_json_names_match_one_image_each(tmp_path):
    """AN-1 (silent-wrong): ``b\\\\a.jpg`` and ``b/a.jpg`` in one test.json got two rows
    with the one image's predictions (exit 0, and --check passed); ``b/a.png`` got the
    predictions of ``b/a.jpg``. Each is refused, naming the entries. AN-2: ``./b/a.jpg``
    is that image, not one "without probabilities"."""
    folder = _one_trash_image(tmp_path)
    out = str(tmp_path / 'sub.csv')
    with pytest.raises(DataError, match=r"images\[0\] 'b\\\\a.jpg' and images\[1\] 'b/a.jpg' "
                       r'name one image \(b/a.jpg\)'):
        make_submission(folder, 'trash', out, test_json=_test_json(tmp_path, 'b\\a.jpg',
                                                                   'b/a.jpg'),
                        progress=False)
    # the check reads the test.json the same way (it passed the two-row file)
    from mmseg_ext.submission.check import check_submission
    (tmp_path / 'two.csv').write_text('image_id,PredictionString\nb/a.jpg,3\n')
    with pytest.raises(DataError, match='name one image'):
        check_submission(str(tmp_path / 'two.csv'), 'trash',
                         test_json=_test_json(tmp_path, 'b\\a.jpg', 'b/a.jpg'))
    with pytest.raises(DataError, match=r"images\[0\] 'b/a.png': .* holds the probabilities "
                       'of b/a.jpg, an image of another extension'):
        make_submission(folder, 'trash', out, test_json=_test_json(tmp_path, 'b/a.png'),
                        progress=False)
    make_submission(folder, 'trash', out, test_json=_test_json(tmp_path, './b/a.jpg'),
                    progress=False)
    rows = open(out).read().splitlines()
    assert rows[0] == 'image_id,PredictionString'
    assert rows[1].startswith('./b/a.jpg,3 3 3') and len(rows) == 2


@pytest.mark.parametrize('signame,status', [('SIGINT', 130), ('SIGTERM', 143)])
def test_a_stop_signal_while_a_tool_imports_is_one_line(signame, status):
    """AN-5: a Ctrl-C in the first ~50 ms of a tool (``import mmseg_ext`` still running,
    before ``cli_main``) printed a ``KeyboardInterrupt`` traceback, with exit 1 when it
    landed inside an import's exception handling; a SIGTERM there gave no line. The
    tools' bootstrap handles the stop signals from its first line: ``error:
    interrupted`` and 128 + the signal. (The signal is sent after the handlers are in
    place and before anything else is imported, the window of the report.)"""
    import subprocess
    import sys

    from conftest import REPO
    code = ('import os, signal, sys, time; sys.path.insert(0, "tools"); import _bootstrap; '
            '_bootstrap._handle_early_stops(); '
            f'os.kill(os.getpid(), signal.{signame}); time.sleep(30)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr == 'error: interrupted\n'


def test_an_ignored_hangup_stays_ignored_while_a_tool_imports():
    """Under ``nohup`` SIGHUP is ignored from the start; the bootstrap keeps it so."""
    import subprocess
    import sys

    from conftest import REPO
    code = ('import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); '
            'sys.path.insert(0, "tools"); import _bootstrap; _bootstrap._handle_early_stops(); '
            'os.kill(os.getpid(), signal.SIGHUP); print("ran on")')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == 'ran on\n', proc.stderr


def _port_folder(tmp_path):
    from mmseg_ext.utils.class_names import PORT_CLASSES
    labels = np.array([[0, 1, 1, 0], [4, 0, 0, 0], [0, 0, 0, 4]])
    probs = np.eye(5, dtype=np.float32)[labels].transpose(2, 0, 1) * 0.8 + 0.04
    return write_prob_folder(tmp_path / 'p', {'x.jpg': (probs, (3, 4))}, PORT_CLASSES,
                             task='multi-class')


def test_a_port_file_in_a_samples_index_spelling_is_checked_by_its_sample(tmp_path):
    """AN-3: a port CSV written from a sample that names classes by index failed the
    tool's own check without the sample, as "unknown class '1'". The line says the
    value is a class index of the sample's spelling; with the sample it passes."""
    from probs_helpers import write_images

    from mmseg_ext.submission.check import check_submission
    folder = _port_folder(tmp_path)
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,class,prediction\nx.jpg,ship,\nx.jpg,1,\n')
    out = tmp_path / 'sub.csv'
    make_submission(folder, 'port', str(out), sample=str(sample), progress=False)
    images = write_images(tmp_path / 'imgs', {'x.jpg': (3, 4)})
    report = check_submission(str(out), 'port', img_dir=images)
    assert any("unknown class '1' (the index of 'container_truck', as a sample submission "
               'may spell it: check the file against its sample)' in e
               for e in report.errors), report.errors
    assert check_submission(str(out), 'port', img_dir=images, sample=str(sample)).ok


def test_a_port_sample_with_its_columns_in_another_order_is_named(tmp_path):
    """AN-4: a sample whose header had the columns in another order was read as a data
    row ("unknown class 'file_name'")."""
    folder = _port_folder(tmp_path)
    sample = tmp_path / 's_cols.csv'
    sample.write_text('class,file_name,prediction\nship,x.jpg,\n')
    with pytest.raises(DataError, match=r"s_cols.csv:1: the header is 'class,file_name,"
                       r"prediction': the columns of 'file_name,class,prediction' in another "
                       'order'):
        make_submission(folder, 'port', str(tmp_path / 'o.csv'), sample=str(sample),
                        progress=False)


def test_a_library_writers_folder_is_named_without_repeating_itself(tmp_path):
    """Round AN (observed): an output inside a folder a library caller published read
    "a published output folder of mmseg_ext output folder (index.json)"."""
    from mmseg_ext.io.staged_dir import StagedDir
    from mmseg_ext.utils.errors import OutputError
    with StagedDir(str(tmp_path / 'probs')) as staged:
        open(staged.file('index.json'), 'w').close()
        staged.commit()
    with pytest.raises(OutputError) as info:
        StagedDir(str(tmp_path / 'probs' / 'inner'))
    assert 'a published output folder of mmseg_ext,' in str(info.value)
    assert 'output folder of mmseg_ext output folder' not in str(info.value)
