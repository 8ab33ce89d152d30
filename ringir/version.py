"""The compiler's version: part of every compile-cache key, so it lives at the bottom layer."""

__version__ = "0.1.0"
