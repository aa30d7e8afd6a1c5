"""OME's built-in TURN server (``IceCandidates/TcpRelay``): WebRTC over TCP for players whose UDP is blocked.

RFC 8656 with TCP between the player and Kiln and UDP relayed addresses, long-term credentials (OME's fixed
``ome``/``airen``). An allocation relays only to Kiln's own ICE ports, never to the Internet at large: with
published credentials anything else would be an open relay.
"""
