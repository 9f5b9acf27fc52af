"""Bronze: raw records as they arrived, append only, with ingestion metadata."""
