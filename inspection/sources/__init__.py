"""Frame sources: where a station's images come from (cameras, GigE Vision cameras, streams, files, folders,
the simulated line), and the watchdog that keeps a live source running."""
