"""The landing zone on object storage: where source systems drop files for bronze."""

from lakehouse.landing.s3 import LandingError, S3Landing

__all__ = ["LandingError", "S3Landing"]
