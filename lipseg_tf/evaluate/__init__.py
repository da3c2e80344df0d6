"""Evaluation: test mode over AB pairs, F1/IoU metrics, and the grids print.py draws."""
