"""Multiplex channels (OME's Multiplex provider): tracks of other live streams combined into one stream."""
