"""Recipe: build a response of unknown size in a buffer, then stream it with aiohttp.

Streaming an export straight to the client while it is being produced has two problems:
the client gets no ``Content-Length``, and if producing fails half-way it has already
received a ``200`` and a truncated body. Producing into a :class:`HybridBuffer` first
fixes both without holding the export in memory: past the threshold it goes to
temporary files (or any other storage). The handler then answers with the exact length
and its SHA-256 and streams the buffer out with :meth:`HybridBuffer.write_to`;
``async with`` closes the buffer however the handler ends (sent, failed, or the client
went away).

Run it (aiohttp comes with the ``s3`` extra)::

    python examples/aiohttp_export.py          # serves http://127.0.0.1:8080/export?rows=N
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from aiohttp import web

from hybridbuffer_async import DEFAULT_THRESHOLD, HybridBuffer
from hybridbuffer_async.storage import StorageFactory

__all__ = ["create_app", "export_rows"]


async def export_rows(rows: int) -> AsyncIterator[bytes]:
    """Stand-in for a database cursor: *rows* CSV lines, produced a line at a time."""
    yield b"id,name,sha256\n"
    for i in range(rows):
        name = f"item-{i}".encode()
        yield b"%d,%s,%s\n" % (i, name, hashlib.sha256(name).hexdigest().encode())


def create_app(
    *, storage: StorageFactory | None = None, threshold: int = DEFAULT_THRESHOLD
) -> web.Application:
    """Build the app.

    :param storage: where exports spill past *threshold* (default: temporary files)
    :param threshold: bytes of an export kept in memory
    """

    async def export(request: web.Request) -> web.StreamResponse:
        try:
            rows = int(request.query.get("rows", "1000"))
        except ValueError:
            raise web.HTTPBadRequest(text="rows must be an integer") from None
        async with HybridBuffer(threshold, storage=storage) as buf:
            digest = hashlib.sha256()
            async for line in export_rows(rows):  # a failure here is a clean 500
                digest.update(line)
                await buf.write(line)
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/csv",
                    "X-SHA256": digest.hexdigest(),
                    "X-Spilled": str(buf.spilled).lower(),
                }
            )
            response.content_length = buf.size
            await response.prepare(request)
            await buf.write_to(response)  # awaits each StreamResponse.write: backpressure
            await response.write_eof()
            return response
        # leaving the block closed the buffer: its temporary files are gone

    app = web.Application()
    app.router.add_get("/export", export)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
