"""Writing a run directory: the run writer and its background committer, resume plans, test-
only fault hooks, the executors that run jobs."""
