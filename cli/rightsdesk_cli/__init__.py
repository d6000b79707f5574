"""rightsdesk command line for operators."""
