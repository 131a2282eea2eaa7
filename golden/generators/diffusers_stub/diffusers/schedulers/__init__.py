"""Holds the verbatim scheduler files copied in by the recorder, next to `scheduling_utils`."""
