"""hookpost: an outbound webhook dispatcher on Postgres."""

__version__ = "0.1.0"
