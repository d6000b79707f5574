import os

# Unit tests never reach AWS: a fixed hash key and a region, set before the core is imported.
os.environ.setdefault("RIGHTSDESK_HASH_KEY", "unit-test-hash-key")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")

# Unit tests submit for the same addresses again and again within the hour: the abuse limits
# (rightsdesk.store.limits) are raised here as local/loopback.py raises them for the test stacks;
# tests/unit/test_limits.py sets its own.
for _name in (
    "CODES_PER_ADDRESS_PER_HOUR",
    "SUBMISSIONS_PER_SOURCE_PER_MINUTE",
    "FAILED_CODES_PER_ADDRESS_PER_HOUR",
    "FAILED_CODES_PER_SOURCE_PER_HOUR",
    "SUBJECT_MAILS_PER_REQUEST_PER_DAY",
):
    os.environ.setdefault(f"LIMIT_{_name}", "100000")


import pytest  # noqa: E402 - after the environment above, which the core reads on import

from local import moto_patches  # noqa: E402

# The in-process moto transacts as the local runner's does (local/moto_patches.py): conditions
# checked first, then the writes, without moto's deep copy of every touched table. That copy made a
# transaction cost time in proportion to all a module had written (85% of test_registry's time).
moto_patches.install_for_unit_tests()


@pytest.fixture(autouse=True)
def restore_clock():
    """Every test gets the clock back as it found it, whatever it moved (rightsdesk.kernel.clock's offset)."""
    from rightsdesk.kernel import clock

    before = clock.offset_seconds()
    yield
    clock.set_offset(before)
