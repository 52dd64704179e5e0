"""The charts: plain chart data, then drawing on matplotlib Figures."""
