"""Frame sources: where a station's images come from (cameras, streams, files, folders, the simulated line)."""
