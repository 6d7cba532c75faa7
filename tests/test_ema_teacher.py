"""Mean-teacher EMA update: teacher = decay * teacher + (1 - decay) * student."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mmseg_ext.engine.ema_teacher import EMATeacherHook, update_teacher


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


def test_hook_follows_student_and_checkpoints():
    from mmseg.registry import HOOKS
    student = small_net()
    fill_dyadic(student, 2)
    runner = SimpleNamespace(model=student, iter=0)
    hook = HOOKS.build(dict(type='EMATeacherHook', decay=0.5, interval=2))
    hook.before_train(runner)
    teacher = hook.teacher
    assert teacher is not student and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    w0 = student[0].weight.detach().clone()
    with torch.no_grad():
        student[0].weight.add_(1.0)
    hook.after_train_iter(runner, 0)                    # iteration 1 of 2: no update
    assert torch.equal(teacher[0].weight, w0)
    runner.iter = 1
    hook.after_train_iter(runner, 1)                    # iteration 2: update
    assert torch.equal(teacher[0].weight, 0.5 * w0 + 0.5 * (w0 + 1.0))
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    fresh = EMATeacherHook(decay=0.5)
    fresh.after_load_checkpoint(runner, ckpt)           # resume before before_train
    fresh.before_train(runner)
    assert torch.equal(fresh.teacher[0].weight, teacher[0].weight)


def test_hook_copies_before_start_iter():
    student = small_net()
    runner = SimpleNamespace(model=student, iter=0)
    hook = EMATeacherHook(decay=0.9, start_iter=5)
    hook.before_train(runner)
    with torch.no_grad():
        student[0].weight.mul_(3.0)
    hook.after_train_iter(runner, 0)
    assert torch.equal(hook.teacher[0].weight, student[0].weight)
