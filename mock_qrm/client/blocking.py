"""One call at a time over the standard library's `http.client`: the command line's client.

A command that makes one or two calls has no use for an event loop, aiohttp or
pydantic, which together take several times longer to import than the call
takes. It sends the same calls as the async client (`mock_qrm.client.calls`)
and hands back the decoded JSON: the API's documented shape, which `--json`
prints as it is.
"""

from __future__ import annotations

import http.client
import json
import socket
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

from mock_qrm.client import calls
from mock_qrm.client.calls import Call
from mock_qrm.client.errors import NOT_JSON, QrmUnavailable, os_reason


class BlockingClient:
    """`send(call)` → the decoded answer; raises `QrmApiError` or `QrmUnavailable`.

    Keeps one connection open for the calls of one command.
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._timeout = timeout
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._prefix = parts.path
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        return self._connection

    def send(self, call: Call) -> Any:
        """One call; the decoded JSON answer, `None` for 204."""
        path = self._prefix + call.path
        if call.query:
            path += "?" + urlencode(call.query)
        headers: dict[str, str | bytes] = {"Accept": "application/json"}
        for name, value in calls.auth_headers(self.api_key).items():
            headers[name] = value.encode()  # UTF-8, as aiohttp sends it (http.client: Latin-1)
        body = None
        if call.body is not None:
            body = json.dumps(call.body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection = self._open()
            connection.request(call.method, path, body=body, headers=headers)
            response = connection.getresponse()
            status = response.status
            text = response.read().decode("utf-8", "replace")
        except socket.gaierror:
            self.close()
            raise QrmUnavailable(self.base_url, "host name not found") from None
        except TimeoutError:
            self.close()
            raise QrmUnavailable(self.base_url, "did not answer in time", reached=True) from None
        except (ConnectionRefusedError, OSError) as exc:
            self.close()
            if isinstance(exc, ConnectionRefusedError) or exc.errno is not None:
                raise QrmUnavailable(self.base_url, os_reason(exc)) from None
            raise QrmUnavailable(
                self.base_url, f"broke the connection ({type(exc).__name__})", reached=True
            ) from None
        except http.client.HTTPException as exc:
            self.close()
            raise QrmUnavailable(
                self.base_url, f"broke the connection ({type(exc).__name__})", reached=True
            ) from None
        if status >= 400:
            raise calls.refusal(status, text)
        if status == 204 or not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise QrmUnavailable(self.base_url, NOT_JSON, reached=True) from None

    def data(self, call: Call) -> Any:
        """The answer's `data`: what `--json` prints."""
        answer = self.send(call)
        if not isinstance(answer, dict) or "data" not in answer:
            raise QrmUnavailable(
                self.base_url, NOT_JSON.replace("JSON", "QRM's JSON"), reached=True
            )
        return answer["data"]
