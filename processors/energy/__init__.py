"""Energy: smart-meter readings -> load spikes and per-zone kWh windows."""
