"""What an identifier a person types must look like: one home for each shape, used by every domain."""

from __future__ import annotations

# Deliberately loose: the address is proven by the emailed code, not by its spelling.
EMAIL_PATTERN = r"^[^@\s<>()\[\]\\,;:\"]{1,64}@[^@\s<>()\[\]\\,;:\"]{1,252}\.[^@\s<>()\[\]\\,;:\".]{2,63}$"
