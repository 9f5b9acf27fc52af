"""Fine-grained access to gold: table, row and column policies of conf/base/access.yaml.

    from lakehouse.access import apply_policy
    visible = apply_policy("site_manager_s01", "gold.pharma.star.fact_ventes", arrow_table)
"""

from lakehouse.access.policy import (
    AccessConfigError,
    AccessDenied,
    AccessPolicy,
    GoldTable,
    RoleSpec,
    apply_policy,
    can_read_table,
    check_columns,
    check_table,
    load_access_policy,
    row_filter_expression,
    visible_columns,
)

__all__ = [
    "AccessConfigError",
    "AccessDenied",
    "AccessPolicy",
    "GoldTable",
    "RoleSpec",
    "apply_policy",
    "can_read_table",
    "check_columns",
    "check_table",
    "load_access_policy",
    "row_filter_expression",
    "visible_columns",
]
