"""The record types of a sweep's output and the statistics across runs."""
