"""`mock-qrm completion bash|zsh`: shell completion written from the parser itself.

Commands, their actions (`webhooks list`) and their flags come from the same
argparse tree that parses them, so completion never falls behind a new flag.
"""

from __future__ import annotations

import argparse

_BASH = """\
# mock-qrm completion for bash: eval "$(mock-qrm completion bash)"
_mock_qrm() {{
    local cur prev words cword
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    local command="${{COMP_WORDS[1]}}"
    local action="${{COMP_WORDS[2]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{commands}" -- "$cur"))
        return
    fi
    case "$command $action" in
{action_cases}
    esac
    case "$command" in
{command_cases}
    esac
}}
complete -F _mock_qrm mock-qrm
"""

_ZSH = """\
#compdef mock-qrm
# mock-qrm completion for zsh: eval "$(mock-qrm completion zsh)"
autoload -U bashcompinit && bashcompinit
{bash}"""


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    flags: list[str] = []
    for action in parser._actions:
        flags.extend(o for o in action.option_strings if o.startswith("--"))
    return flags


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _subcommands(parser)
    action_cases = []
    command_cases = []
    for name, sub in commands.items():
        actions = _subcommands(sub)
        for action, leaf in actions.items():
            words = " ".join(_flags(leaf))
            action_cases.append(
                f'        "{name} {action}"*) COMPREPLY=($(compgen -W "{words}" -- "$cur")); return;;'
            )
        words = " ".join([*actions, *_flags(sub)])
        if name == "completion":
            words = "bash zsh"
        command_cases.append(f'        {name}) COMPREPLY=($(compgen -W "{words}" -- "$cur"));;')
    bash = _BASH.format(
        commands=" ".join(commands),
        action_cases="\n".join(action_cases),
        command_cases="\n".join(command_cases),
    )
    return bash if shell == "bash" else _ZSH.format(bash=bash)
