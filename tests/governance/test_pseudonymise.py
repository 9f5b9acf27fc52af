"""Keyed pseudonyms, the key's sources, and the silver_customers transformation."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from chispa import assert_df_equality

from lakehouse.config import load_settings
from lakehouse.governance.pseudonymise import (
    PseudonymisationKeyError,
    pseudonym,
    pseudonymisation_key,
)
from lakehouse.silver.customers import pseudonymise_customers

# RFC 4231 test case 2: HMAC-SHA256(key="Jefe", data="what do ya want for nothing?").
RFC4231_KEY = b"Jefe"
RFC4231_DATA = "what do ya want for nothing?"
RFC4231_MAC = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_pseudonym_is_hmac_sha256_of_the_trimmed_lower_cased_value():
    assert pseudonym(RFC4231_DATA, RFC4231_KEY) == RFC4231_MAC
    assert pseudonym("  What do ya want for NOTHING?  ", RFC4231_KEY) == RFC4231_MAC  # normalised first
    assert pseudonym(RFC4231_DATA, b"another key") != RFC4231_MAC
    assert pseudonym(None, RFC4231_KEY) is None
    assert pseudonym("   ", RFC4231_KEY) == ""


def _settings(tmp_path, **overrides):
    return load_settings(var_dir=str(tmp_path / "var"), lake_root=str(tmp_path / "lake"), **overrides)


def test_configured_key_wins(tmp_path):
    settings = _settings(tmp_path, governance={"pseudonymisation_key": "k" * 32})
    assert pseudonymisation_key(settings) == b"k" * 32
    assert not (tmp_path / "var" / "governance").exists()  # no local key generated


def test_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", "env-key-0123456789abcdef")
    assert pseudonymisation_key(_settings(tmp_path)) == b"env-key-0123456789abcdef"


def test_local_profile_generates_a_private_key_once(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", raising=False)
    settings = _settings(tmp_path)
    first = pseudonymisation_key(settings)
    key_file = tmp_path / "var" / "governance" / "pseudonymisation.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 64  # 32 random bytes as hex
    assert pseudonymisation_key(settings) == first  # stable: pseudonyms keep joining across runs


def test_a_key_file_readable_by_others_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", raising=False)
    settings = _settings(tmp_path)
    pseudonymisation_key(settings)
    key_file = tmp_path / "var" / "governance" / "pseudonymisation.key"
    key_file.chmod(0o644)
    with pytest.raises(PseudonymisationKeyError, match=r"readable by others \(mode 644\).*chmod 600"):
        pseudonymisation_key(settings)


def test_other_profiles_need_a_configured_key(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", raising=False)
    with pytest.raises(PseudonymisationKeyError, match="no pseudonymisation key for profile 'prod'.*LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY"):
        pseudonymisation_key(_settings(tmp_path, profile="prod"))
    assert not (tmp_path / "var" / "governance").exists()


def test_a_short_key_is_refused_without_showing_it(tmp_path):
    with pytest.raises(PseudonymisationKeyError, match="is 5 characters long") as caught:
        pseudonymisation_key(_settings(tmp_path, governance={"pseudonymisation_key": "abcde"}))
    assert "abcde" not in str(caught.value)


def test_silver_customers_keep_business_fields_and_pseudonymise_contacts(spark):
    at = dt.datetime(2026, 11, 20, 9, 0)
    bronze = spark.createDataFrame(
        [
            (" C00001 ", "Pharmacy", "Pharmacie du Port", RFC4231_DATA, " Lucie@Orange.FR ", None, "", "44000", "Nantes", at),
            ("C00002", "hospital", "CHU", None, None, None, None, None, None, None),  # a row of NULLs
        ],
        "customer_id string, customer_type string, name string, contact_name string, email string, "
        "phone string, address string, postcode string, city string, updated_at timestamp",
    )

    result = pseudonymise_customers(bronze, RFC4231_KEY)

    lucie = pseudonym("lucie@orange.fr", RFC4231_KEY)
    expected = spark.createDataFrame(
        [
            ("C00001", "pharmacy", "Pharmacie du Port", RFC4231_MAC, lucie, None, "", "orange.fr", "44000", "Nantes", at),
            ("C00002", "hospital", "CHU", None, None, None, None, None, None, None, None),
        ],
        "customer_id string, customer_type string, name string, contact_name_pseudonym string, "
        "email_pseudonym string, phone_pseudonym string, address_pseudonym string, email_domain string, "
        "postcode string, city string, updated_at timestamp",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
