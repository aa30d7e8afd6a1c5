"""SRT playback (``Bind/Publishers/SRT``): callers pull one output stream as MPEG-TS over SRT."""
