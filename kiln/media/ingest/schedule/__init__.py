"""Scheduled channels: files played as a live stream by a schedule (OME's Schedule provider)."""
