"""`mock-qrm completion bash|zsh`: shell completion that asks mock-qrm itself.

The script is a few lines: on each TAB the shell runs `mock-qrm completion
--complete N WORD...`, which builds the parser of the command being typed, and
only that one, and prints what may come next: commands, actions, flags, and the
values a flag takes (event codes, states, routes). Completion therefore never
falls behind a new flag, and the script prints as fast as `--version`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

_BASH = """\
# mock-qrm completion for bash: eval "$(mock-qrm completion bash)"
_mock_qrm() {{
    local IFS=$'\\n'
    COMPREPLY=($({program} completion --complete "$COMP_CWORD" "${{COMP_WORDS[@]}}" 2>/dev/null))
}}
complete -o default -F _mock_qrm mock-qrm
"""

_ZSH = """\
#compdef mock-qrm
# mock-qrm completion for zsh: eval "$(mock-qrm completion zsh)"
autoload -U +X bashcompinit && bashcompinit
{bash}"""


def add(commands: Any, name: str, help_text: str) -> None:
    completion = commands.add_parser(
        name,
        help=help_text,
        description='Shell completion: eval "$(mock-qrm completion bash)" in ~/.bashrc'
        " (or zsh in ~/.zshrc).",
    )
    completion.add_argument("shell", nargs="?", choices=["bash", "zsh"])
    # What the script asks on each TAB: `--complete N WORD...`, every word as typed.
    completion.add_argument("--complete", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    completion.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from mock_qrm.cli.args import usage
    from mock_qrm.cli.output import document, say

    if args.complete is not None:
        index, *words = args.complete or ["0"]
        if index.isdigit():
            for candidate in candidates(words, int(index)):
                say(shlex.quote(candidate))  # a route has spaces: it goes in as one word
        return
    if args.shell is None:
        raise usage("completion needs a shell: bash or zsh")
    document(script(args.shell).rstrip("\n"))


def script(shell: str) -> str:
    """The shell's script; it runs this very interpreter, so it works from any venv."""
    program = f"{shlex.quote(sys.executable)} -m mock_qrm"
    bash = _BASH.format(program=program)
    return bash if shell == "bash" else _ZSH.format(bash=bash)


def candidates(words: list[str], index: int) -> list[str]:
    """What may stand at `words[index]` (words[0] is `mock-qrm`), given the words before it."""
    from mock_qrm.cli.parser import COMMANDS, build_parser

    current = words[index] if index < len(words) else ""
    before = words[1:index]
    if not before:
        return [name for name in COMMANDS if name.startswith(current)]
    command = before[0]
    if command not in COMMANDS:
        return []
    parser = _subparsers(build_parser(only=command)).get(command)
    if parser is None:
        return []
    actions = _subparsers(parser)
    if actions:
        if len(before) == 1:
            return [name for name in actions if name.startswith(current)]
        parser = actions.get(before[1], parser)
    flag = before[-1] if before[-1].startswith("--") else None
    values = _values(parser, flag) if flag else None
    if values is not None:
        return [value for value in values if value.startswith(current)]
    return [
        word for word in (*_positional_choices(parser), *_flags(parser)) if word.startswith(current)
    ]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        if action.help is not argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def _positional_choices(parser: argparse.ArgumentParser) -> list[str]:
    """The values a positional argument takes (`completion bash`), when it lists them."""
    return [
        str(choice)
        for action in parser._actions
        if not action.option_strings
        and action.help is not argparse.SUPPRESS
        and not isinstance(action, argparse._SubParsersAction)
        for choice in (action.choices or getattr(action.type, "choices", None) or ())
    ]


def _values(parser: argparse.ArgumentParser, flag: str) -> list[str] | None:
    """The values `flag` takes, if it takes a value: its choices, or none to suggest."""
    for action in parser._actions:
        if flag in action.option_strings:
            if action.nargs == 0:
                return None  # a switch: what follows is another flag
            choices = action.choices or getattr(action.type, "choices", None)
            return [str(choice) for choice in choices] if choices else []
    return None
