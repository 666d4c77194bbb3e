"""`mock-qrm`: one command line for the server, the receiver and every call a client makes.

`main` is its one entry. It builds the parser of the chosen command only (see
`parser`), runs it, and turns every failure into one line on stderr that
starts `mock-qrm: error:` and an exit status: 2 for a usage error, 1 for
anything else, never a traceback. A client command imports the blocking
client and the contract, not the server, aiohttp or pydantic, so it answers
in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from mock_qrm.cli.args import EXIT_FAILED, PROG, CliError

DEBUG = "MOCK_QRM_DEBUG"
"""Set, an unexpected failure shows its traceback instead of one line."""


def main(argv: Sequence[str] | None = None) -> None:
    from mock_qrm.cli.parser import build_parser, chosen

    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=chosen(given))
    if given and given[0].split("=", 1)[0] in ("--server", "--api-key", "--json"):
        flag = given[0].split("=", 1)[0]
        parser.error(f"{flag} goes after the command, e.g. mock-qrm webhooks list {flag} ...")
    args = parser.parse_args(given)
    run: Callable[..., None] = args.run
    try:
        try:
            run(args)
        finally:
            sys.stdout.flush()
    except CliError as exc:
        _fail(str(exc), exc.status, exc.more)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # the reader stopped early (`| head`): nothing more to say
        from mock_qrm.cli.output import silence_stdout

        silence_stdout()
        sys.exit(141)  # as if killed by SIGPIPE, like any other command in a pipe
    except Exception as exc:
        error = _said(exc)
        _fail(str(error), error.status)


def _said(exc: Exception) -> CliError:
    """Any other failure in one line: a refusal, an unreachable server, or our own bug."""
    from mock_qrm.cli.connect import failure
    from mock_qrm.client.errors import QrmUnavailable
    from mock_qrm.contract.errors import QrmApiError

    if isinstance(exc, QrmUnavailable | QrmApiError):
        return failure(exc)
    if os.environ.get(DEBUG):
        raise exc
    return CliError(
        f"unexpected {type(exc).__name__}: {exc} (a bug: set {DEBUG}=1 to see where, and report it)"
    )


def _fail(message: str, status: int, more: Sequence[str] = ()) -> None:
    from mock_qrm.cli.output import printable

    with contextlib.suppress(OSError):
        for line in (message, *more):
            print(f"{PROG}: error: {printable(line)}", file=sys.stderr, flush=True)
    sys.exit(status or EXIT_FAILED)
