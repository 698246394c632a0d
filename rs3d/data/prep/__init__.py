"""Offline data tooling, run once per dataset rather than every training step: checking videos, re-encoding them
for fast decoding, and generating the toy dataset."""
