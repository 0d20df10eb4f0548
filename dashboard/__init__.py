"""The read-only web dashboard: apps, their objects and history, and the live event trail."""
