import os

# Unit tests never reach AWS: a fixed hash key and a region, set before the core is imported.
os.environ.setdefault("RIGHTSDESK_HASH_KEY", "unit-test-hash-key")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
