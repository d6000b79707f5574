"""rightsdesk core: the rules of subject-rights handling, importable and testable without AWS."""

__version__ = "0.1.0"

# Whatever a process imports first, the kernel's retention rules get the deployment's overrides from
# config, the one reader of the environment (the kernel itself imports nothing above it).
from rightsdesk.platform import config as _config  # noqa: E402,F401
