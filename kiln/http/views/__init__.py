"""OME's JSON for things media measures, rendered from frozen snapshots.

Each module declares, as Protocols, the snapshot it reads; media produces objects of that shape
(``kiln/media/stream/snapshot.py``), so HTTP renders them without importing media.
"""
