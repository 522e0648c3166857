"""The results service stops promptly on SIGTERM with live streams open (issue 9): uvicorn waits for every open
response, and a stream never ends by itself, so the streams are ended first (``event: shutdown``)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

from line_support import ServiceProcess

STREAMS = 200
LIMIT_S = 20.0


async def _stream(port: int, token: str, connected: asyncio.Queue) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    seen = b""
    while b": connected" not in seen:
        chunk = await reader.read(65536)
        if not chunk:
            break
        seen += chunk
    await connected.put(True)
    try:
        async with asyncio.timeout(LIMIT_S + 10):
            while chunk := await reader.read(65536):
                seen += chunk
    except TimeoutError:
        pass
    writer.close()
    return seen


async def _streams_then_sigterm(server: ServiceProcess) -> tuple[list[bytes], float, int | None]:
    assert server.proc is not None
    connected: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(_stream(server.port, server.reader, connected)) for _ in range(STREAMS)]
    for _ in range(STREAMS):
        await asyncio.wait_for(connected.get(), 60)
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(server.proc.wait, LIMIT_S + 5)
    except subprocess.TimeoutExpired:
        code = None
    elapsed = time.monotonic() - t0
    if code is None:
        server.proc.kill()
    return await asyncio.gather(*tasks), elapsed, code


def test_service_stops_within_20_s_on_sigterm_with_200_streams_open(tmp_path):
    server = ServiceProcess(tmp_path)
    server.start()
    try:
        streams, elapsed, code = asyncio.run(_streams_then_sigterm(server))
    finally:
        assert server.proc is not None
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait(10)
    assert code is not None, f"the service was still running {LIMIT_S + 5:g} s after SIGTERM"
    assert elapsed < LIMIT_S, f"stopping took {elapsed:.1f} s"
    print(f"stopped {elapsed:.2f} s after SIGTERM with {STREAMS} streams open")
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught once it has shut down
    told = sum(b"event: shutdown" in s for s in streams)
    assert told == STREAMS, f"only {told} of {STREAMS} streams were told the service is stopping"
    assert all(s.endswith(b"0\r\n\r\n") for s in streams), "every stream ended with its last chunk"
