"""A 1 kHz sine encoded with any PyAV audio stream: the audio half of every generated test clip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler


def encode_sine(stream: Any, *, samples: int, rate: int, layout: str = "stereo") -> Iterator[av.Packet]:
    """Packets of ``samples`` samples of sine from ``stream``'s encoder, in frame_size chunks, pts from 0,
    flushed at the end (the caller muxes them)."""
    ctx = stream.codec_context
    if not ctx.is_open:
        ctx.open()
    source = av.open(f"sine=frequency=1000:sample_rate={rate}", format="lavfi")
    resampler = AudioResampler(format=ctx.format.name, layout=layout, rate=rate)
    fifo = AudioFifo()
    pts = 0
    try:
        for frame in source.decode(audio=0):
            for converted in resampler.resample(frame):
                fifo.write(converted)
            while fifo.samples >= ctx.frame_size and pts < samples:
                chunk = fifo.read(ctx.frame_size)
                chunk.pts = pts
                pts += chunk.samples
                yield from stream.encode(chunk)
            if pts >= samples:
                break
        yield from stream.encode(None)
    finally:
        source.close()
