"""vfr-bench: video face restoration benchmark.

Importing this package is cheap: no method, metric backend, dlib or Lightning
code is loaded until a registry entry is resolved.
"""
__version__ = "0.1.0"
