"""WebRTC playback (``Publishers/WebRTC``): OME's WebSocket signalling and WHEP on the player port."""
