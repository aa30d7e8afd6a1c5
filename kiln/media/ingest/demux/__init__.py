"""PyAV demuxing into Kiln's media model, shared by RTSP pull, MPEG-TS/UDP and SRT ingest."""
