"""Simulated sensors of the pilot area: loop detectors, Remote ID drones and smart meters (no Kafka here)."""

from citystream.simulator.base import Injected
from citystream.simulator.core import CitySimulator, SimSize, size_for_rate
from citystream.simulator.run import run_simulation

__all__ = ["CitySimulator", "Injected", "SimSize", "run_simulation", "size_for_rate"]
