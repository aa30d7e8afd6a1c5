"""An in-memory asyncio transport for driving the HTTP protocols (uvicorn's, the fast lane's) without sockets."""

from __future__ import annotations

from typing import Any


class RecordingTransport:
    """Records each write separately (one write is one send on a real socket); ``written`` is all of them."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.protocol: Any = None

    @property
    def written(self) -> bytes:
        return b"".join(self.writes)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.writes.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 3333), "peername": ("127.0.0.2", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_protocol(self) -> Any:
        return self.protocol


def connect(protocol_class: Any, app: Any, server: bytes = b"kiln", loop: Any = None,
            **config: Any) -> tuple[Any, RecordingTransport]:
    """A connection of ``protocol_class`` (uvicorn's or one of Kiln's) on a RecordingTransport, made as uvicorn's
    server makes one; ``config`` goes to uvicorn.Config, ``loop`` (a fake clock) to the protocol."""
    import uvicorn
    from uvicorn.server import ServerState

    settings = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none", http=protocol_class,
                              **config)
    settings.load()
    state = ServerState()
    state.default_headers = [(b"server", server)]
    protocol = protocol_class(config=settings, server_state=state, app_state={},
                              **({"_loop": loop} if loop is not None else {}))
    transport = RecordingTransport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport
