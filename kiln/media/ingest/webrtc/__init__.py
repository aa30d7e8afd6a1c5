"""WebRTC ingest: a browser's (or any WHIP client's) sendonly media becomes a Kiln input stream."""
