"""Pulled streams (``POST …/streams``): a worker thread per pull that connects, demuxes and feeds a stream."""
