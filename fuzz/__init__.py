"""atheris fuzz targets for RingKernel: parser, frontend, PTX/WGSL/MSL lowerings, queues, HLC.

Run them with ``python -m fuzz`` (see :mod:`fuzz.run` and docs/fuzzing.md).
"""
