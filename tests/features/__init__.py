"""Tests of the feature schema and the offline extractor."""
