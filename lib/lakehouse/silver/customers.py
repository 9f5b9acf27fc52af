"""Silver customers: the referential customers with their contact fields pseudonymised.

Personal data (the contact person's name, e-mail, phone and street address) stays in
``bronze_customers`` only; here each becomes an HMAC-SHA256 pseudonym
(:mod:`lakehouse.governance.pseudonymise`), so analyses can still count or match
contacts without seeing them. Gold reads customers from here, never from bronze.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.governance.pseudonymise import pseudonymisation_key, with_pseudonyms

CONTACT_COLUMNS = ("contact_name", "email", "phone", "address")


def pseudonymise_customers(bronze: DataFrame, key: bytes) -> DataFrame:
    """One row per customer (key ``customer_id``): business fields typed, contact fields
    replaced by ``<field>_pseudonym``, plus the e-mail's domain (an organisation, not a
    person) for deliverability checks."""
    typed = bronze.select(
        F.trim("customer_id").alias("customer_id"),
        F.lower(F.trim("customer_type")).alias("customer_type"),
        F.col("name"),
        *CONTACT_COLUMNS,
        F.lower(F.substring_index(F.trim("email"), "@", -1)).alias("email_domain"),
        F.col("postcode"),
        F.col("city"),
        F.col("updated_at").cast("timestamp").alias("updated_at"),
    )
    return with_pseudonyms(typed, CONTACT_COLUMNS, key).select(
        "customer_id",
        "customer_type",
        "name",
        *(f"{column}_pseudonym" for column in CONTACT_COLUMNS),
        "email_domain",
        "postcode",
        "city",
        "updated_at",
    )


@dp.materialized_view(
    path="silver/domain=pharma/table=customers",
    contract=dp.Contract(
        keys=("customer_id",),
        grain="one row per customer",
        owner="data-platform",
        pii={f"{column}_pseudonym": "pseudonymised" for column in CONTACT_COLUMNS},
    ),
)
@dp.expect_or_fail("customer_id_present", "customer_id IS NOT NULL AND customer_id <> ''")
def silver_customers(bronze_customers):
    """One row per customer (key customer_id); contact fields pseudonymised (HMAC-SHA256)."""
    key = pseudonymisation_key(dp.current().parameters["settings"])
    return pseudonymise_customers(bronze_customers, key)
