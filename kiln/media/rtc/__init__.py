"""WebRTC plumbing shared by playback (``media/publish/webrtc``) and ingest (``media/ingest/webrtc``).

``signalling`` is OME's WebSocket message codec; ``ice_ports`` reads ``IceCandidates``; ``udp_mux``
serves every session on the few configured UDP ports; ``connection`` builds aiortc peer connections
whose ICE uses them; ``sdp`` holds the SDP helpers; ``ingest`` declares what the player port hands
to WebRTC ingest (``direction=send`` sockets and WHIP requests).
"""
