"""Settings every test layer shares."""

from hypothesis import settings

# A test asserts behaviour, never timing: Hypothesis' per-example deadline (200 ms) failed correct
# tests whenever the two cores were busy with other work (CI, parallel helpers, xdist workers).
settings.register_profile("rightsdesk", deadline=None)
settings.load_profile("rightsdesk")
