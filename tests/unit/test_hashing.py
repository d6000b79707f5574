import pytest

from rightsdesk.platform import hashing


def test_codes_are_six_digits_and_vary():
    codes = {hashing.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150


def test_hashes_are_keyed_and_domain_separated():
    assert hashing.keyed_hash("code", "123456") != hashing.keyed_hash("status_token", "123456")
    assert hashing.matches("code", "123456", hashing.keyed_hash("code", "123456"))
    assert not hashing.matches("code", "123457", hashing.keyed_hash("code", "123456"))
    assert not hashing.matches("code", "123456", None)


def test_hash_changes_with_the_key(monkeypatch):
    before = hashing.keyed_hash("code", "123456")
    monkeypatch.setenv("RIGHTSDESK_HASH_KEY", "another-key")
    from rightsdesk.platform import config

    config.reload()
    hashing.forget_key()
    try:
        assert hashing.keyed_hash("code", "123456") != before
    finally:
        monkeypatch.undo()
        config.reload()
        hashing.forget_key()


def test_email_hash_ignores_case_and_surrounding_space():
    assert hashing.email_hash(" Ana@Example.COM ") == hashing.email_hash("ana@example.com")
    assert "ana" not in hashing.email_hash("ana@example.com")


@pytest.mark.parametrize("given", ["", "abc", "k\U0010c31az\U0001600e", "»Õi\x96", "\ud800", "a" * 64, "é" * 32])
def test_a_value_from_outside_is_compared_without_error_whatever_its_characters(given):
    """A cursor's or a link's signature comes from the caller: non-ASCII must be a mismatch, not a 500."""
    assert hashing.same_text(given, "0" * 32) is False
    assert hashing.same_text(given, given) is True
