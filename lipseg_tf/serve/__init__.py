"""Serving a trained model: SavedModel and TFLite export, face alignment, and predict.py's work."""
