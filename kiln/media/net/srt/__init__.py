"""Kiln's SRT layer: a ctypes binding to Debian's libsrt 1.5 and what SRT ingest and push need.

- ``libsrt``: the raw binding (loaded on first use; ``SrtUnavailable`` names the package to install);
  ``abi`` holds the option numbers and struct layouts it uses
- ``socket.SrtSocket``: one socket, Pythonic; ``errors.SrtError`` carries libsrt's error text
- ``listener.SrtListener``: one port, many callers, one epoll thread, accept/reject in the handshake
- ``sender.SrtSender``: a live caller for pushes, with FFmpeg's URL semantics (``url``)
- ``streamid.resolve_streamid``: OME's streamid grammar
"""
