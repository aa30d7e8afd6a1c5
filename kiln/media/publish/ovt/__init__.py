"""OVT publisher: edges (Kiln or OME) pull output streams from this origin over OVT."""
