"""Benchmarks beside lipseg_tf itself: peers scored on the same data with the same metric."""
