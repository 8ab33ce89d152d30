"""RingKernel benchmarks: ``python -m bench`` from the repository root (see README.md)."""
