"""A weight-free test-only method (``darken``) for the user-study round trip; registered by
pointing ``$VFR_BENCH_METHODS`` at this folder."""
