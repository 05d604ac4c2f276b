"""A small HTTP proxy in front of a test S3 server that answers like AWS S3 where it differs.

AWS S3 refuses a PUT with ``Transfer-Encoding: chunked`` (501 NotImplemented) and a PUT
without ``Content-Length`` (411 MissingContentLength); moto takes both (``aws_rules=False``
forwards them too). Requests of known length must also pass the rules of
:class:`~tests.s3.s3_rules.StoreRules` (AWS's checksum and part rules by default; R2's and
B2's on request). Everything else is forwarded byte for byte, one upstream connection per
request. It can also inject faults to exercise failure paths over real HTTP: an error
answer after a delay, a request body changed on its way, or a connection cut or stalled
part-way through a request or response body (see :class:`Fault`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from .s3_rules import StoreRules, checksum_headers

__all__ = ["PROXY_TASK_NAME", "AwsRulesProxy", "Fault", "FaultRule", "Seen", "every"]

#: The proxy's own connection tasks, which tests looking for leaked tasks ignore.
PROXY_TASK_NAME = "aws-rules-proxy"


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of forwarding it plainly, after *delay* seconds.

    * *status* (not 0): answer it with S3 error *code* (and *message*), the request body
      unread.
    * *corrupt*: change the last byte of the request body, then forward it.
    * *request_bytes*: take that many bytes of the request body (as sent: chunked framing
      counts), then *then*: ``"cut"`` the connection or ``"stall"`` (never answer).
    * *response_bytes*: forward the request, and that many bytes of the response body,
      then *then*.
    * none of these: forward it (late, if *delay*).
    """

    status: int = 0
    code: str = ""
    delay: float = 0.0
    request_bytes: int | None = None
    response_bytes: int | None = None
    then: Literal["cut", "stall"] = "cut"
    message: str = "refused by the AWS-rules proxy"
    corrupt: bool = False

    def describe(self) -> str:
        if self.status:
            return f"{self.status} {self.code}"
        if self.corrupt:
            return "corrupt the request body"
        if self.request_bytes is not None:
            return f"{self.then} request after {self.request_bytes} bytes"
        if self.response_bytes is not None:
            return f"{self.then} response after {self.response_bytes} bytes"
        return f"delay {self.delay}s"


#: Decides the fault (or none) for a request, from its method and target.
FaultRule = Callable[[str, str], Fault | None]


def every(k: int, fault: Fault, when: Callable[[str, str], bool] = lambda m, t: True) -> FaultRule:
    """A rule giving *fault* to every *k*-th request that *when* selects (the k-th, 2k-th...)."""
    count = 0

    def rule(method: str, target: str) -> Fault | None:
        nonlocal count
        if not when(method, target):
            return None
        count += 1
        return fault if count % k == 0 else None

    return rule


@dataclass
class Seen:
    method: str
    target: str
    status: int  # 0 for a fault before any answer
    chunked: bool
    content_length: int | None
    fault: str = ""  # Fault.describe() of the fault injected, if any
    #: The algorithms of the request's ``x-amz-checksum-*`` headers ("crc32", ...).
    checksums: tuple[str, ...] = ()


@dataclass
class AwsRulesProxy:
    upstream: str
    fault: FaultRule = lambda method, target: None
    seen: list[Seen] = field(default_factory=list)
    #: Refuse chunked and unknown-length PUTs as AWS does; off: forward them to the upstream.
    aws_rules: bool = True
    #: The rules requests of known length must pass (None: none).
    rules: StoreRules | None = field(default_factory=StoreRules)
    #: Serve HTTPS with it (the upstream is plain HTTP).
    tls: ssl.SSLContext | None = None
    injected: list[Seen] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    #: Set (and replaced) whenever a request is recorded in seen or injected.
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _note(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        """Wait until *predicate* (of :attr:`seen` or :attr:`faults`) holds: tests wait
        for what the proxy saw, never for a guessed amount of time.

        :raises TimeoutError: if it does not hold within *within* seconds
        """
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    @property
    def refused(self) -> list[Seen]:
        return [s for s in self.seen if s.status in (411, 501)]

    @property
    def faults(self) -> list[Seen]:
        """The requests that got a fault (recorded when it is injected: a request stalled
        or cut has no answer to record)."""
        return self.injected

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.set_name(PROXY_TASK_NAME)
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Closing the proxy: end quietly (asyncio logs a handler task that ends cancelled).
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = int(headers["content-length"]) if "content-length" in headers else None

        fault: Fault | None = None

        sums = tuple(sorted(checksum_headers(headers)))

        def record(status: int) -> None:
            injected = fault.describe() if fault is not None else ""
            self.seen.append(Seen(method, target, status, chunked, length, injected, sums))
            self._note()

        if self.aws_rules and method == "PUT" and chunked:
            record(501)
            await self._refuse(reader, writer, 501, "NotImplemented", "Transfer-Encoding")
            return
        if self.aws_rules and method == "PUT" and length is None and not chunked:
            record(411)
            await self._refuse(reader, writer, 411, "MissingContentLength", "Content-Length")
            return
        # botocore sends large bodies with "Expect: 100-continue": the client waits for a
        # go-ahead before the body, which is also what lets a refusal come first.
        expect = headers.get("expect", "").lower() == "100-continue"
        fault = self.fault(method, target)
        if fault is not None:
            self.injected.append(Seen(method, target, 0, chunked, length, fault.describe()))
            self._note()
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status:
            record(fault.status)
            if not expect and length:
                await reader.readexactly(length)
            await self._answer(writer, fault.status, fault.code, fault.message)
            return
        if expect:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if fault is not None and fault.request_bytes is not None:
            with contextlib.suppress(asyncio.IncompleteReadError):
                await reader.readexactly(fault.request_bytes)
            await self._end(writer, fault.then)
            return
        if chunked:
            body = await self._read_chunked(reader)
        else:
            body = await reader.readexactly(length) if length else b""
            if fault is not None and fault.corrupt and body:
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            refusal = self.rules.check(method, target, headers, body) if self.rules else None
            if refusal is not None:
                record(refusal.status)
                await self._answer(writer, refusal.status, refusal.code, refusal.message)
                return
        cut = fault.response_bytes if fault is not None else None
        then = fault.then if fault is not None else "cut"
        answer = await self._forward(head, body, writer, record, cut, then)
        if self.rules is not None and answer is not None:
            self.rules.learn(method, target, headers, *answer)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        """A chunked body as sent (framing included), up to its last chunk and trailers."""
        raw = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            raw += line
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                while True:  # trailers, up to an empty line
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        return bytes(raw)
            raw += await reader.readexactly(size + 2)

    @staticmethod
    async def _end(writer: asyncio.StreamWriter, then: Literal["cut", "stall"]) -> None:
        if then == "stall":  # hold the connection open, silent, until the proxy closes
            await asyncio.Event().wait()
        writer.transport.abort()

    async def _forward(
        self,
        head: bytes,
        body: bytes,
        writer: asyncio.StreamWriter,
        record: Callable[[int], None],
        cut: int | None = None,
        then: Literal["cut", "stall"] = "cut",
    ) -> tuple[int, bytes] | None:
        """Forward the request; the status and body of the answer relayed in full."""
        url = urlsplit(self.upstream)
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            # One request per connection: the response then ends where the upstream closes.
            lines = [
                line
                for line in head.split(b"\r\n")
                if line and not line.lower().startswith((b"connection:", b"expect:"))
            ]
            up_writer.write(b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body)
            await up_writer.drain()
            resp_head = await up_reader.readuntil(b"\r\n\r\n")
            status = int(resp_head.split(b" ", 2)[1])
            record(status)  # before the client can see the answer
            resp_lines = [
                line
                for line in resp_head.split(b"\r\n")
                if line and not line.lower().startswith(b"connection:")
            ]
            writer.write(b"\r\n".join([*resp_lines, b"Connection: close", b"", b""]))
            # The start of the answer is kept: the rules learn upload ids from it.
            kept = bytearray()
            while data := await up_reader.read(1 << 16):
                if cut is not None and len(data) >= cut:
                    writer.write(data[:cut])
                    await writer.drain()
                    await self._end(writer, then)
                    return None
                if cut is not None:
                    cut -= len(data)
                if len(kept) < 1 << 16:
                    kept += data[: (1 << 16) - len(kept)]
                writer.write(data)
                await writer.drain()
            return status, bytes(kept)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def _refuse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        code: str,
        header: str,
    ) -> None:
        # Answer at once, as AWS does, then discard what the client still sends.
        await self._answer(writer, status, code, header=header)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while await reader.read(1 << 16):
                    pass

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter,
        status: int,
        code: str,
        message: str = "refused by the AWS-rules proxy",
        header: str | None = None,
    ) -> None:
        extra = f"<Header>{header}</Header>" if header else ""
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"{extra}<RequestId>proxy</RequestId></Error>"
        ).encode()
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            411: "Length Required",
            501: "Not Implemented",
        }
        writer.write(
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
            "Content-Type: application/xml\r\n"
            f"Content-Length: {len(xml)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + xml
        )
        await writer.drain()
