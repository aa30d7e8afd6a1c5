"""Kiln's own ISO-BMFF (fragmented MP4 / CMAF) writer and reader.

Written by hand rather than through PyAV because LL-HLS packages one part per track every few hundred
milliseconds on the event loop: building a part is a handful of ``struct.pack`` calls, with no muxer
state, no threads and byte-for-byte control over the layout OME writes (media-spec §2.7).
"""

from kiln.media.formats.bmff.errors import BmffError

__all__ = ["BmffError"]
