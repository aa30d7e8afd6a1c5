"""RTMP ingest (publish side): handshake, chunk stream, AMF0 commands, FLV tag bodies -> media model."""
