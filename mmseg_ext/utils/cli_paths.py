"""Where a parsed command line names files: the path-role check of every tool (CLI layer).

Every text option of a :class:`~mmseg_ext.utils.cli.ToolParser` declares its ``role``
(:data:`~mmseg_ext.utils.path_roles.ROLES`). :func:`check_path_roles` collects the inputs
and outputs the chosen parsers' options name (:func:`chosen_parsers`: the parser and the
sub-commands the command line chose) and refuses an output that is an input, lies inside
an input folder, or holds an input (:func:`~mmseg_ext.utils.path_roles.output_conflict`),
and two outputs where one would write over the other (the same path, or one inside an
output that is not a work dir: :func:`~mmseg_ext.utils.path_roles.outputs_conflict`),
naming both options.
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import List, Optional, Tuple

from .path_roles import (
    OUTPUT_ROLES,
    config_data_inputs,
    conflict_text,
    output_conflict,
    output_place_problem,
    outputs_conflict,
)


def option_label(action: argparse.Action) -> str:
    """How the user spells ``action``: its long flag, or the positional's name."""
    if action.option_strings:
        longs = [o for o in action.option_strings if o.startswith('--')]
        return (longs or action.option_strings)[0]
    return action.metavar if isinstance(action.metavar, str) else action.dest


def _values(value) -> List[str]:
    """The text values an option holds (one, or a list of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _url_path(url: str) -> Optional[str]:
    """The local file a ``file://`` URL names, else None."""
    from urllib.parse import unquote, urlparse
    parts = urlparse(url)
    return unquote(parts.path) if parts.scheme == 'file' and parts.path else None


def _subparser_actions(parser: argparse.ArgumentParser) -> List[argparse.Action]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def all_parsers(parser: argparse.ArgumentParser) -> List[argparse.ArgumentParser]:
    """``parser`` and every sub-command's parser under it."""
    found = [parser]
    for action in _subparser_actions(parser):
        for sub in action.choices.values():
            found += all_parsers(sub)
    return found


def chosen_parsers(parser: argparse.ArgumentParser, ns: argparse.Namespace
                    ) -> List[argparse.ArgumentParser]:
    """``parser`` and the sub-command parsers the command line chose."""
    chain = [parser]
    for action in _subparser_actions(parser):
        name = getattr(ns, action.dest, None) if action.dest != argparse.SUPPRESS else None
        if name in action.choices:
            chain += chosen_parsers(action.choices[name], ns)
    return chain


def _declared_paths(chain: List[argparse.ArgumentParser], ns: argparse.Namespace
                    ) -> Tuple[List[Tuple[str, str, str]], List[Tuple[str, argparse.Action]]]:
    """The inputs ``(path, option, source)`` and outputs ``(path, action)`` the command
    line names, by the roles its options declare."""
    inputs: List[Tuple[str, str, str]] = []
    outputs: List[Tuple[str, argparse.Action]] = []
    for parser in chain:
        for action in parser._actions:
            role = getattr(action, 'role', None)
            values = _values(getattr(ns, action.dest, None))
            label = option_label(action)
            for value in values:
                if role in ('input', 'config'):
                    inputs.append((value, label, ''))
                elif role == 'input-or-value' and osp.exists(value):
                    inputs.append((value, label, ''))
                elif role == 'url' and _url_path(value):
                    inputs.append((_url_path(value), label, ''))
                elif role in OUTPUT_ROLES:
                    outputs.append((value, action))
                if role == 'config':
                    options = getattr(ns, 'cfg_options', None)
                    inputs += [(root, label, f'data of {value}')
                               for root in config_data_inputs(value, options)]
    return inputs, outputs


def check_path_roles(parser: argparse.ArgumentParser, chain: List[argparse.ArgumentParser],
                     ns: argparse.Namespace) -> None:
    """Refuse an output that is an input, lies in an input folder or holds an input
    (:func:`~.path_roles.output_conflict`), naming the output's option and the input
    (through ``parser.fail``: ``parser`` is a :class:`~mmseg_ext.utils.cli.ToolParser`)."""
    inputs, outputs = _declared_paths(chain, ns)
    for out, action in outputs:
        problem = output_place_problem(out)
        if problem:
            parser.fail(option_label(action), problem)
    for out, action in outputs:
        for src, label, source in inputs:
            reason = output_conflict(out, src, holds_inputs=action.role == 'work-dir')
            if reason:
                where = source or (label if reason == 'also an input' else '')
                parser.fail(option_label(action), conflict_text(out, src, reason, where))
    for i, (out, action) in enumerate(outputs):
        for other, other_action in outputs[i + 1:]:
            reason = outputs_conflict(out, other, action.role == 'work-dir',
                                      other_action.role == 'work-dir')
            if reason:
                parser.fail(option_label(action),
                            f'{out} is {reason} {other} ({option_label(other_action)}); '
                            'give each output its own place')

