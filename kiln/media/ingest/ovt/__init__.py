"""OVT provider: a pull (``POST …/streams`` or Origins) of a stream from an OVT origin, Kiln or OME."""
