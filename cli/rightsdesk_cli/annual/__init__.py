"""The annual report: figures from the table for a year, as JSON and HTML. Only the CLI uses it,
so it is not in the Lambda layer."""
