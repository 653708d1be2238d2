"""The host's floor: uvloop and httptools answering a constant, with no framework and no model.

Each request is parsed (httptools, as uvicorn does) and answered at once with the same constant
as the hello-world floor. What it cannot do, no Python server on this event loop can: its
latency at c=16 is what the host itself adds (scheduling, the hypervisor's pauses), so the
benchmark prints every server's tail beside it.

    python bench/apps/loop_floor.py --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import httptools
import uvloop

ANSWER = (
    b'{"model_name":"nepse-predictor","outputs":[{"name":"probability","shape":[1],'
    b'"datatype":"FP32","data":[0.5]}]}'
)
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(ANSWER),
    ANSWER,
)


class ConstantAnswer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(RESPONSE)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ConstantAnswer, host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
