"""Delivery: queue claims, signing, the HTTP sender, the retry policy and the worker loop."""
