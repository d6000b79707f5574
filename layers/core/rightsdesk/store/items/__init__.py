"""The RightsTable items as pynamodb models, one module per aggregate; `table` holds what they share."""
