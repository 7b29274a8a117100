"""Runicorn: git-integrated versioning for machine-learning data, models, runs and artifacts."""
__version__ = "0.1.0"
