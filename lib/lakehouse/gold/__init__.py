"""Gold: the star schema (facts and dimensions) and business KPIs."""
