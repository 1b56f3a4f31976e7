"""The PII detectors: true values are found, look-alikes that fail validation are not, and only
masked forms come out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.auditors.privacy._pii import (
    find_pii,
    iban_valid,
    luhn_valid,
    mask_card,
    mask_email,
    scan_columns,
    ssn_valid,
)

TRUE_VALUES = [
    ("email", "contact john.doe@example.com today"),
    ("email", "x_y+tag@mail.co.uk"),
    ("payment_card", "card 4111 1111 1111 1111 exp"),
    ("payment_card", "amex 378282246310005"),
    ("payment_card", "mc 5555-5555-5555-4444"),
    ("iban", "pay GB82 WEST 1234 5698 7654 32 now"),
    ("iban", "DE89370400440532013000"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "NO93 8601 1117 947"),
    ("us_ssn", "ssn 219-09-9999"),
    ("ipv4", "from 192.168.1.20."),
    ("ipv6", "host 2001:db8::8a2e:370:7334 up"),
    ("phone", "call +44 20 7946 0958"),
    ("phone", "call (212) 555-0142"),
    ("phone", "call 212-555-0142"),
    ("url_credentials", "see https://admin:s3cret@db.example.com/path"),
]

LOOK_ALIKES = [
    "card 4111 1111 1111 1112",  # fails Luhn
    "number 1234567812345670",  # Luhn-valid but no issuer prefix
    "iban GB82 WEST 1234 5698 7654 33",  # fails mod-97
    "iban DE89 3704 0044 0532 0130",  # DE needs 22 characters
    "iban XX82 WEST 1234 5698 7654 32",  # no such country
    "ssn 000-12-3456",  # area 000
    "ssn 666-12-3456",  # area 666
    "ssn 912-12-3456",  # area 900-999
    "ssn 123-00-4567",  # group 00
    "ssn 123-45-0000",  # serial 0000
    "ip 256.1.1.1",
    "ip 01.2.3.4",  # leading zeros are ambiguous (octal) and rejected
    "version 1.2.3.4.5",
    "time 12:30:45",
    "mail foo@bar",  # no top-level domain
    "mail a..b@example.com",
    "phone 123-456-7890",  # NANP area code cannot start with 1
    "phone 555-0100",  # no area code
    "phone +12 34",  # too few digits for E.164
    "url https://user@host.com/x",  # a user but no password
    "date 2024-01-05 and order 12345678",
]


@pytest.mark.parametrize(("pii_type", "text"), TRUE_VALUES)
def test_detects_valid_values(pii_type: str, text: str) -> None:
    assert [m.pii_type for m in find_pii(text)] == [pii_type]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_ignores_look_alikes_that_fail_validation(text: str) -> None:
    assert find_pii(text) == []


def test_masks_keep_only_a_hint() -> None:
    assert mask_email("john.doe@example.com") == "j***@e***.com"
    assert mask_card("4111 1111 1111 1111") == "**** **** **** 1111"
    masked = {m.pii_type: m.masked for m in find_pii(
        "GB82 WEST 1234 5698 7654 32 / 219-09-9999 / 10.1.2.3 / (212) 555-0142 / https://bob:hunter2@x.example.org")}
    assert masked == {"iban": "GB** **** **** **** **** 32", "us_ssn": "***-**-**99", "ipv4": "10.*.*.*",
                      "phone": "(***) ***-**42", "url_credentials": "https://b***:****@x.example.org"}


def test_a_span_is_counted_once_under_its_most_specific_type() -> None:
    # The URL's user:password@host would also read as an e-mail address.
    matches = find_pii("db at https://alice:pw123@mail.example.com")
    assert [m.pii_type for m in matches] == ["url_credentials"]


def test_validators_on_reference_values() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765423")
    assert ssn_valid("219", "09", "9999") and not ssn_valid("987", "65", "4321")  # reserved for adverts


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError("no check digit")  # pragma: no cover


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(1, 15), st.integers(1, 9))
def test_luhn_valid_visa_found_and_any_single_digit_change_rejected(body: str, pos: int, delta: int) -> None:
    number = _luhn_complete("4" + body)
    assert [m.pii_type for m in find_pii(f"pay {number} now")] == ["payment_card"]
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1:]
    assert find_pii(f"pay {changed} now") == []  # Luhn catches every single-digit error


def test_scan_counts_per_type_rows_and_columns() -> None:
    counts = scan_columns({
        "text": ["mail j@example.com and k@example.org", "nothing here", "card 4111111111111111"],
        "notes": ["4111 1111 1111 1112", "ssn 219-09-9999", None],
    }, max_examples=1)
    assert counts["email"].matches == 2 and counts["email"].rows == {0}
    assert counts["email"].examples == ["j***@e***.com"]
    assert counts["payment_card"].matches == 1 and counts["payment_card"].columns == {"text"}
    assert counts["us_ssn"].rows == {1} and counts["us_ssn"].columns == {"notes"}
    assert counts["iban"].matches == 0
