"""Ocula: find where your detector fails, and fix your dataset."""
