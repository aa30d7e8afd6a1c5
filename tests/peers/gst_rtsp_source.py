#!/usr/bin/python3
"""RTSP test source: rtsp://127.0.0.1:PORT/MOUNT serving H.264 + AAC test patterns (gst-rtsp-server).

Run by the SYSTEM interpreter (/usr/bin/python3 has python3-gi; the venv does not), from
tests/peers/rtsp_server.py. Usage: gst_rtsp_source.py PORT [MOUNT] [MAX_SECONDS]. It prints
"READY <url>" once serving and quits by itself after MAX_SECONDS as a safety net.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=180,framerate=30/1 "
    "! x264enc tune=zerolatency speed-preset=veryfast key-int-max=30 ! video/x-h264,profile=baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=1 "
    "audiotestsrc is-live=true wave=sine freq=1000 ! audio/x-raw,rate=48000,channels=2 "
    "! voaacenc bitrate=128000 ! rtpmp4gpay name=pay1 pt=97 )"
)


def main() -> None:
    port = sys.argv[1]
    mount = sys.argv[2] if len(sys.argv) > 2 else "/cam"
    max_seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 600
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(True)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"attach failed on port {port} (busy?)")
    sys.stdout.write(f"READY rtsp://127.0.0.1:{port}{mount}\n")
    sys.stdout.flush()
    loop = GLib.MainLoop()
    GLib.timeout_add_seconds(max_seconds, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
