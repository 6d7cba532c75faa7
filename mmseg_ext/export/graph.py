"""The segmentor's whole-image forward as an ONNX graph with probabilities out.

:class:`ProbabilityGraph` wraps a segmentor: ``input`` float32 ``(N, 3, H, W)`` (the data
preprocessor's output) -> ``probs`` and ``logits``, both ``(N, C, H, W)`` at the input
size (see :mod:`mmseg_ext.inference.onnx_backend` for the contract). It calls the
segmentor's own ``encode_decode`` (decode heads, cascades, the resize to the input with
the head's ``align_corners``), so nothing of the model is written twice.

:func:`export_graph` traces it with ``torch.export`` (:func:`trace_program`: strict
tracing within a time limit, then non-strict) and converts the
program with torch's ONNX exporter (``dynamo=True``, which needs onnxscript). The legacy
TorchScript exporter is not used: it is deprecated since torch 2.9, and its trace turns
the U-Net's skip-connection sizes into constants, so a graph exported at one size fails
at another. A module the tracer or the converter cannot handle is named in one
:class:`~mmseg_ext.utils.errors.ConfigError` line: the module's path in the model
(``backbone.encoder.3``), its class and the operator.
"""
from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import warnings
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..inference.onnx_backend import EXPORT_HINT, INPUT_NAME, LOGITS_NAME, PROBS_NAME
from ..utils.errors import ConfigError, EnvironmentCheckError

#: the ONNX operator set written (onnxruntime 1.17+ runs it)
OPSET = 18


class ProbabilityGraph(nn.Module):
    """``(N, 3, H, W)`` preprocessed images -> ``(probs, logits)``, each ``(N, C, H, W)``.

    Args:
        segmentor: an mmseg ``EncoderDecoder`` (or cascade) in eval mode.
        multi_label: sigmoid per class (True) or softmax over classes (False); a
            one-channel multi-class head gives ``probs = [1 - sigmoid, sigmoid]``.
    """

    def __init__(self, segmentor: nn.Module, multi_label: bool):
        super().__init__()
        self.segmentor = segmentor
        self.multi_label = multi_label

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        # the heads read the first entry only; one entry keeps the batch size symbolic
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        logits = self.segmentor.encode_decode(x, metas)
        if logits.shape[2:] != size:  # a head that does not resize to the input
            logits = F.interpolate(logits, size=size, mode='bilinear',
                                   align_corners=self.segmentor.align_corners)
        if self.multi_label:
            probs = logits.sigmoid()
        elif logits.shape[1] == 1:
            fg = logits.sigmoid()
            probs = torch.cat([1 - fg, fg], dim=1)
        else:
            probs = logits.softmax(dim=1)
        return probs, logits


def require_exporter() -> None:
    """Raise one :class:`EnvironmentCheckError` naming the fix when torch's ONNX
    exporter cannot run here (it needs ``onnx`` and ``onnxscript``)."""
    for name in ('onnx', 'onnxscript'):
        try:
            __import__(name)
        except ImportError as exc:
            raise EnvironmentCheckError(f'ONNX export needs {name}, which does not import '
                                        f'here ({exc}); {EXPORT_HINT}') from None


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress notices and warnings (torchvision operators it
    skips, deprecations of its own internals) while it runs."""
    loggers = [logging.getLogger(n) for n in ('torch.onnx', 'torch.export',
                                              'torch._dynamo', 'torch.fx', 'onnxscript')]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _module_names(model: nn.Module) -> Dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def failing_module(exc: BaseException, model: nn.Module) -> Optional[str]:
    """``'backbone.encoder.3 (ConvBlock)'``: the innermost module of ``model`` whose
    code was running when ``exc`` was raised (None when none was)."""
    names = _module_names(model)
    found = None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get('self')
        if owner is not None and id(owner) in names:
            found = owner
        tb = tb.tb_next
    if found is None:
        return None
    path = names[id(found)].removeprefix('segmentor.').removeprefix('segmentor') or 'model'
    return f'{path} ({type(found).__name__})'


def _op_name(target) -> str:
    """``'special_zeta'`` of ``aten.special_zeta.default``."""
    parts = str(target).split('.')
    return parts[-2] if len(parts) >= 2 else parts[0]


def _node_module(program, node_name: str, op: str = '') -> Optional[str]:
    """The module of the exported program's node ``node_name``, or else of the first
    node whose operator names ``op``'s base (``zeta`` for ``prims.zeta``: the converter
    decomposes the program first, which renames nodes), from its ``nn_module_stack``."""
    base = op.split('.')[-1] if op else ''
    nodes = [n for n in program.graph.nodes if n.op == 'call_function']
    found = [n for n in nodes if n.name == node_name] or \
        [n for n in nodes if base and base in _op_name(n.target)]
    for node in found:
        stack = node.meta.get('nn_module_stack') or {}
        if stack:
            path, kind = list(stack.values())[-1]
            kind = kind.__name__ if isinstance(kind, type) else str(kind).rsplit('.', 1)[-1]
            return f'{str(path).removeprefix("segmentor.") or "model"} ({kind})'
    return None


def _first_line(exc: BaseException) -> str:
    """The most specific line of an exporter error: its innermost cause's first line."""
    inner = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip().splitlines()
    return (text[0] if text else type(inner).__name__)[:300]


def conversion_problem(exc: BaseException, program) -> str:
    """One line for an error of the ONNX conversion: the operator, its module, why."""
    text = str(exc)
    op = re.search(r"OpOverload\(op='([^']+)', overload='([^']+)'\)", text)
    node = re.search(r'translating node %(\w+)', text)
    where = _node_module(program, node.group(1) if node else '', op.group(1) if op else '')
    what = f'operator {op.group(1)}.{op.group(2)}' if op else 'an operator'
    return (f'{what}{" in module " + where if where else ""} has no ONNX conversion '
            f'({_first_line(exc)})')


#: the input dimensions a constraint violation names (``L['x'].size()[2]``)
_VIOLATED = re.compile(r"size\(\)\[(\d)\]")


def _export(graph: ProbabilityGraph, example: torch.Tensor, dims, strict: bool):
    from torch.export import Dim
    shapes = {'x': {d: Dim.DYNAMIC for d in dims}} if dims else None
    with quiet_exporter():
        return torch.export.export(graph, (example,), dynamic_shapes=shapes, strict=strict)


#: seconds strict tracing may take before the non-strict tracer is tried instead
STRICT_SECONDS = 90.0


class _TraceTimeout(Exception):
    """Strict tracing ran past :data:`STRICT_SECONDS`."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_TraceTimeout` in this (main) thread after ``seconds``; no limit
    outside the main thread or without ``setitimer``."""
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, 'setitimer'):
        yield
        return

    def expire(signum, frame):  # noqa: ARG001
        raise _TraceTimeout(f'strict tracing took more than {seconds:g} s')

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def trace_program(graph: ProbabilityGraph, example: torch.Tensor, dynamic: bool,
                  config: str) -> Tuple[object, torch.Tensor]:
    """``torch.export`` of ``graph`` at ``example``: the batch dynamic, and height and
    width too when ``dynamic``; returns the program and the example it was traced at.

    Strict tracing by TorchDynamo first: it keeps sizes symbolic through the Python
    arithmetic the models do on them (the U-Nets' ``nn.Upsample``; HRNet's graph from
    the non-strict tracer is wrong at an untraced size). It is given
    :data:`STRICT_SECONDS`: on Swin it does not finish (its symbolic window padding
    grows without bound in sympy). Then non-strict tracing (the model's Python runs as
    written; a failure names the module), with the batch fixed at 1 where the model
    pins it (Swin reshapes its windows with the batch as a Python number). The caller
    checks the graph at an untraced size either way.

    Raises:
        ConfigError: the model cannot be traced, or fixes its input size; the message
            names the module where it can.
    """
    dims = (0, 2, 3) if dynamic else (0,)
    try:
        with _time_limit(STRICT_SECONDS):
            return _export(graph, example, dims, strict=True), example
    except Exception:  # noqa: BLE001  (the tracer raises many kinds; the next one names it)
        with contextlib.suppress(Exception):  # a trace cut short may leave dynamo state
            torch._dynamo.reset()
    try:
        return _export(graph, example, dims, strict=False), example
    except Exception as exc:  # noqa: BLE001  (the tracer raises many kinds)
        first = failure = exc
    pinned = {int(d) for d in _VIOLATED.findall(str(failure))} \
        if 'Constraints violated' in str(failure) else set()
    if pinned == {0}:
        try:
            return _export(graph, example[:1], dims[1:], strict=False), example[:1]
        except Exception as exc:  # noqa: BLE001
            failure = exc
    where = failing_module(first, graph) or failing_module(failure, graph)
    text = _first_line(failure)
    if 'Constraints violated' in text:
        text = ('its code fixes the input batch, height or width at the traced size '
                f'{tuple(example.shape)}; export it for a fixed input shape instead')
    raise ConfigError(f'{config}: cannot export the model'
                      f'{" (module " + where + ")" if where else ""}: {text}') from None


def export_graph(graph: ProbabilityGraph, example: torch.Tensor, path: str, dynamic: bool,
                 config: str, opset: int = OPSET, shown: Optional[str] = None) -> bool:
    """Write ``graph`` as an ONNX file at ``path`` (input ``input``, outputs ``probs``
    and ``logits``; the batch symbolic, height and width too when ``dynamic``).

    Returns:
        whether the batch stayed dynamic (else it is 1: :func:`trace_program`).

    Raises:
        EnvironmentCheckError: onnx or onnxscript is missing.
        ConfigError: a module cannot be traced or an operator has no ONNX conversion
            (one line naming the module).
    """
    require_exporter()
    program, example = trace_program(graph, example, dynamic, config)
    try:
        with quiet_exporter():
            onnx_program = torch.onnx.export(
                program, (example,), input_names=[INPUT_NAME],
                output_names=[PROBS_NAME, LOGITS_NAME], opset_version=opset, dynamo=True,
                optimize=True, verbose=False, external_data=False)
    except Exception as exc:  # noqa: BLE001  (the converter raises many kinds)
        raise ConfigError(f'{config}: cannot export the model: '
                          f'{conversion_problem(exc, program)}') from None
    from ..io.output_errors import output_error
    try:
        onnx_program.save(path, external_data=False)
    except OSError as exc:  # a full disk, a file size limit: named as the user's output
        raise output_error(shown or path, exc) from None
    return example.shape[0] != 1
