"""Traffic: loop-detector readings -> congestion alerts and per-zone speed/flow windows."""
