"""Syncer workers: consume sync requests, fetch, render, apply, prune and report."""
