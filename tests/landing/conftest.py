"""The landing tests use the S3 server fixtures of tests/conftest.py (``s3_endpoint``,
``aws_env``, ``s3_client``, ``kms_client``, ``bucket``)."""
