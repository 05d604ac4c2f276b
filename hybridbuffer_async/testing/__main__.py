"""Serve an embedded S3 until stdin closes; the endpoint URL is printed on the first line."""

from ._s3 import serve

serve()
