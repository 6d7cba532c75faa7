"""Mean-teacher EMA update: teacher = decay * teacher + (1 - decay) * student."""
import pytest
import torch
from torch import nn

from mmseg_ext.models.segmentors.mean_teacher import update_teacher


def small_net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


def fill_dyadic(module, seed):
    """Values k / 8 with small k: every product and sum below is exact in float32."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randint(-16, 17, t.shape, generator=g).float() / 8)


def test_update_is_exact_on_dyadic_values():
    teacher, student = small_net(), small_net()
    fill_dyadic(teacher, 0)
    fill_dyadic(student, 1)
    student[1].num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    update_teacher(teacher, student, 0.75)
    for name, value in teacher.state_dict().items():
        s = student.state_dict()[name]
        if value.is_floating_point():
            expected = 0.75 * before[name] + 0.25 * s   # computed independently
            assert torch.equal(value, expected), name
        else:
            assert torch.equal(value, s), name          # integer buffers copied
    assert teacher[1].num_batches_tracked.item() == 7


def test_update_random_values_and_mismatch():
    teacher, student = small_net(), small_net()
    before = [p.clone() for p in teacher.parameters()]
    update_teacher(teacher, student, 0.999)
    for t, t0, s in zip(teacher.parameters(), before, student.parameters()):
        ref = (0.999 * t0.double() + 0.001 * s.double()).float()
        torch.testing.assert_close(t, ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match='differ'):
        update_teacher(teacher, nn.Conv2d(1, 2, 3), 0.9)
    with pytest.raises(ValueError, match='decay'):
        update_teacher(teacher, student, 1.5)
