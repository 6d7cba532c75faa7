"""tools/get_weights.py timm:<model> against a fake Hugging Face Hub on 127.0.0.1 serving
a tiny timm checkpoint built here: download, published checksum, the model check,
offline, and TimmEncoder loading the file."""
import hashlib
import http.server
import os
import os.path as osp
import threading

import pytest
import torch
from conftest import require_timm, run_tool

pytestmark = pytest.mark.timm
MODEL = 'convnext_atto.d2_in1k'


@pytest.fixture(autouse=True)
def _timm():
    require_timm()


class FakeHub:
    """Serves ``root/<repo>/resolve/main/<file>`` with the Hub's ``X-Linked-Etag``
    (the file's SHA-256, or ``etag`` when set)."""

    def __init__(self, root):
        self.root, self.etag = str(root), None
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = osp.join(hub.root, self.path.lstrip('/'))
                if not osp.isfile(path):
                    self.send_error(404)
                    return
                data = open(path, 'rb').read()
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.send_header('X-Linked-Etag',
                                 f'"{hub.etag or hashlib.sha256(data).hexdigest()}"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, model, state):
        from safetensors.torch import save_file
        folder = osp.join(self.root, 'timm', model, 'resolve', 'main')
        os.makedirs(folder, exist_ok=True)
        save_file({k: v.contiguous() for k, v in state.items()},
                  osp.join(folder, 'model.safetensors'))
        return osp.join(folder, 'model.safetensors')


@pytest.fixture
def hub(tmp_path):
    fake = FakeHub(tmp_path / 'hub')
    yield fake
    fake.server.shutdown()


def _state(name):
    import timm
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).state_dict()


def test_download_checks_and_publishes_the_file(hub, tmp_path):
    served = hub.put(MODEL, _state('convnext_atto'))
    out = tmp_path / 'pretrain'
    env = {'HF_ENDPOINT': hub.url}
    proc = run_tool('tools/get_weights.py', f'timm:{MODEL}', '--out-dir', str(out),
                    '--no-progress', env=env)
    assert proc.returncode == 0, proc.stderr
    target = out / 'timm' / f'{MODEL}.safetensors'
    assert open(target, 'rb').read() == open(served, 'rb').read()
    assert proc.stdout.strip() == (f'timm:{MODEL}: {target} (downloaded from {hub.url}/timm/'
                                   f'{MODEL}/resolve/main/model.safetensors)')
    assert sorted(os.listdir(out / 'timm')) == [  # the file and its ownership record
        f'.{MODEL}.safetensors.mmseg_ext_owner.json', f'{MODEL}.safetensors']
    again = run_tool('tools/get_weights.py', f'timm:{MODEL}', '--out-dir', str(out), env=env)
    assert again.returncode == 0 and 'already there and valid' in again.stdout
    # the encoder of a config loads exactly these weights from the file
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    enc = MODELS.build(dict(type='TimmEncoder', model_name=MODEL, pretrained=True,
                            checkpoint_path=str(target)))
    state = _state('convnext_atto')
    assert torch.equal(enc.model.stem_0.weight, state['stem.0.weight'])


def test_a_wrong_published_checksum_or_another_model_leaves_nothing(hub, tmp_path):
    hub.put(MODEL, _state('convnext_atto'))
    out = tmp_path / 'pretrain'
    env = {'HF_ENDPOINT': hub.url}
    hub.etag = '0' * 64
    proc = run_tool('tools/get_weights.py', f'timm:{MODEL}', '--out-dir', str(out),
                    '--no-progress', env=env)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert 'SHA-256' in errors[0] and 'the server publishes 00000000' in errors[0]
    assert not out.exists() or not any(files for _, _, files in os.walk(out))
    # the right checksum, but the weights of another model under that name
    hub.etag = None
    hub.put(MODEL, _state('resnet18'))
    proc = run_tool('tools/get_weights.py', f'timm:{MODEL}', '--out-dir', str(out),
                    '--no-progress', env=env)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert f'does not hold timm:{MODEL} weights' in errors[0]
    assert 'keys of convnext_atto.d2_in1k missing' in errors[0]
    assert not any(files for _, _, files in os.walk(out))


def test_offline_is_one_line_naming_the_alternatives(tmp_path):
    out = tmp_path / 'pretrain'
    proc = run_tool('tools/get_weights.py', f'timm:{MODEL}', '--out-dir', str(out),
                    '--no-progress', env={'HF_ENDPOINT': 'http://127.0.0.1:9'})
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f'error: timm:{MODEL}: download failed (http://127.0.0.1:9/')
    assert errors[0].endswith(f'copy timm/{MODEL}.safetensors into {out}/ yourself, or '
                              'train from scratch with the config setting '
                              'model.backbone.pretrained=False')
    assert not any(files for _, _, files in os.walk(out)) if out.exists() else True


def test_an_unknown_timm_model_is_an_argument_error():
    proc = run_tool('tools/get_weights.py', 'timm:convnext_tinyy')
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: NAME: timm:convnext_tinyy: timm ")
