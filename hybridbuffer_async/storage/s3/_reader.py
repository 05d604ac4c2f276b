"""Reading an object back: one streamed ``get_object``, ranged from the reader's offset."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...errors import StorageError
from ._errors import mapped

if TYPE_CHECKING:
    from ._backend import S3Backend

__all__ = ["S3Reader"]


class S3Reader:
    """Streams one object with ``get_object`` (ranged from *offset*), chunk by chunk."""

    def __init__(self, backend: S3Backend, key: str, offset: int) -> None:
        self._backend = backend
        self._key = key
        self._offset = offset
        self._body: Any = None
        self._eof = False

    async def open(self) -> None:
        args: dict[str, Any] = {"Key": self._key, **self._backend.cfg.sse_c_args}
        if self._offset:
            args["Range"] = f"bytes={self._offset}-"
        try:
            resp = await self._backend.call("get_object", self._key, **args)
        except StorageError as exc:
            if exc.code == "InvalidRange":  # offset at the end: nothing to read
                self._eof = True
                return
            raise
        self._body = resp["Body"]

    async def read(self, n: int) -> bytes:
        if self._eof or self._body is None:
            return b""
        cfg = self._backend.cfg
        with mapped("read", cfg.bucket, self._key):
            async with asyncio.timeout(cfg.timeout):
                data: bytes = await self._body.read(n)
        if not data:
            self._eof = True
        return data

    async def aclose(self) -> None:
        body, self._body = self._body, None
        self._eof = True
        if body is not None:
            body.close()
