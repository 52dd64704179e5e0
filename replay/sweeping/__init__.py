"""The engine over logs: which facts a log gives, grids per policy family, sweeps in compact
blocks, branch curves, dialects and study sweeps."""
