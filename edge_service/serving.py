"""Running the service under uvicorn so that it stops promptly: on SIGTERM (or Ctrl-C) uvicorn waits for
every open response to finish, and a live stream never finishes by itself. So the live feed is closed first
(every stream sends what it has queued and ``event: shutdown``, then ends), and whatever still runs after
:data:`GRACE_S` seconds (a client that stopped reading) is cancelled."""

from __future__ import annotations

import socket

from fastapi import FastAPI

GRACE_S = 10  # after the streams were told to end: then the remaining requests are cancelled


def run(app: FastAPI, host: str, port: int, access_log: bool = False, grace_s: int = GRACE_S) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then end the live streams and stop within ``grace_s`` s."""
    import uvicorn

    class StreamEndingServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.feed.close()  # on the event loop, before uvicorn starts waiting for the responses
            await super().shutdown(sockets)

    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level="info",
                            timeout_graceful_shutdown=grace_s)
    StreamEndingServer(config).run()
