"""Vigil's producer SDK."""
