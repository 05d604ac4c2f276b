"""Recipe: spool an upload of unknown size in a FastAPI endpoint, then hand it on.

A client streams a body without ``Content-Length`` (chunked). The endpoint writes it into
a :class:`HybridBuffer` as it arrives -- in memory while small, in storage (temporary
files by default, S3 with ``S3Storage``) past the threshold -- computing its SHA-256 on
the way. Only once the whole body is in does it answer, so it can refuse a body that is
too large with 413 and state the size and digest up front; then it streams the bytes
back out of the buffer with a known ``Content-Length``. At no point is the body held in
memory, and the buffer is closed (its storage removed) however the response ends.

Run it (``pip install fastapi uvicorn``)::

    uvicorn examples.fastapi_upload:app
    curl -X POST -T big.iso -H "Transfer-Encoding: chunked" -o copy.iso \
        http://127.0.0.1:8000/uploads

To forward the upload elsewhere instead of echoing it, copy the buffer into any object
with a ``write`` method inside the endpoint (``await buf.write_to(sink)``) and close it
there. A buffer is not a file object: botocore's ``put_object(Body=...)`` cannot take it.
To keep the upload in S3, spool it there in the first place: pass
``storage=S3Storage(client, "bucket", key_prefix="uploads")`` to :func:`create_app`.
"""

from __future__ import annotations

import contextlib
import hashlib

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from hybridbuffer_async import DEFAULT_THRESHOLD, HybridBuffer
from hybridbuffer_async.storage import StorageFactory

__all__ = ["BufferResponse", "app", "create_app"]


class BufferResponse(StreamingResponse):
    """Stream a buffer's unread bytes as the response body, then close the buffer.

    ``aclose()`` runs when the response is done, also when the client went away or the
    server cancelled the request: a ``background=`` task would be skipped then.
    """

    def __init__(self, buffer: HybridBuffer, headers: dict[str, str] | None = None) -> None:
        # A HybridBuffer is an async iterator of bytes: Starlette streams it as it is.
        super().__init__(buffer, headers=headers, media_type="application/octet-stream")
        self.headers["content-length"] = str(len(buffer))
        self.buffer = buffer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.buffer.aclose()


def create_app(
    *,
    storage: StorageFactory | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    max_size: int = 1024**3,
) -> FastAPI:
    """Build the app.

    :param storage: where uploads spill past *threshold* (default: temporary files)
    :param threshold: bytes of an upload kept in memory
    :param max_size: larger uploads are refused with 413
    """
    app = FastAPI()

    @app.post("/uploads")
    async def upload(request: Request) -> Response:
        buf = HybridBuffer(threshold, storage=storage)
        try:
            digest = hashlib.sha256()
            # aclosing: a refusal leaves the loop early, and the body's async generator
            # would otherwise be finalized later, by a stray task.
            async with contextlib.aclosing(request.stream()) as body:
                async for chunk in body:
                    if buf.size + len(chunk) > max_size:
                        await buf.aclose()
                        return JSONResponse({"detail": "upload too large"}, status_code=413)
                    digest.update(chunk)
                    await buf.write(chunk)
        except BaseException:
            await buf.aclose()  # a failed or cancelled upload leaves nothing behind
            raise
        headers = {"x-sha256": digest.hexdigest(), "x-spilled": str(buf.spilled).lower()}
        return BufferResponse(buf, headers=headers)

    return app


app = create_app()
