"""rightsdesk core: the rules of subject-rights handling, importable and testable without AWS."""

__version__ = "0.1.0"
