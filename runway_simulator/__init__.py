"""A stand-in for Runway's developer API, usable without Django; see `simulator` for what it does."""

from runway_simulator.simulator import API_VERSION, SAMPLE_VIDEO, RecordedRequest, RunwaySimulator

__all__ = ["API_VERSION", "SAMPLE_VIDEO", "RecordedRequest", "RunwaySimulator"]
