"""local/moto_process.py: moto in a process of its own."""

from __future__ import annotations

import gc

from local.moto_process import freeze_after_full_collection


def test_moto_leaves_what_survived_a_full_collection_out_of_later_ones():
    gc.unfreeze()
    try:
        kept = [object() for _ in range(1000)]
        freeze_after_full_collection("stop", {"generation": 1})
        assert gc.get_freeze_count() == 0, "only a full collection's survivors are frozen"
        freeze_after_full_collection("stop", {"generation": 2})
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
