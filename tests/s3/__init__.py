"""Tests of the S3 storage backend, against moto served over real HTTP."""
