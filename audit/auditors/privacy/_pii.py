"""Validated detectors of personal information in text, and masking so that none of it is ever
printed.

Each detector is a candidate pattern *plus a validation step*, because a bare regex flags every
long number: payment cards must pass the Luhn check (ISO/IEC 7812-1) and carry a known issuer
prefix; IBANs must have their country's length and pass the ISO 13616 mod-97 check; US SSNs must
respect the SSA's area/group/serial rules; IP addresses must parse with :mod:`ipaddress`; phone
numbers need an international ``+`` prefix with 7-15 digits (ITU-T E.164) or the North American
NXX-NXX-XXXX shape with valid area and exchange codes; e-mail addresses need a well-formed local
part and a dotted domain with an alphabetic top-level label; URLs count only when they carry a
user *and* a password (``scheme://user:pass@host``).

Spans are claimed in priority order (credentials in URLs, e-mail, IBAN, card, SSN, IP, phone) so
one piece of text is counted once, under its most specific type.

What is *not* detected: personal names, postal addresses, dates of birth, national IDs other than
US SSNs, undashed 9-digit SSNs and local phone numbers without area code (too many false
positives), and any PII that is obfuscated ("john at example dot com").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

PII_TYPES = ("url_credentials", "email", "iban", "payment_card", "us_ssn", "ipv4", "ipv6", "phone")

# ISO 13616 IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

_EMAIL = re.compile(r"(?<![\w.%+/:-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_URL_CRED = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s/?#@:]+:[^\s/?#@]+@[^\s/?#<>\"']+[^\s<>\"']*")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\w-])")
_PHONE_NANP = re.compile(r"(?<![\w+-])(?:\+?1[ .-]?)?(?:\((\d{3})\)\s?|(\d{3})[ .-])(\d{3})[ .-](\d{4})(?![\w-])")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1, as used by payment card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """Issuer prefixes and lengths of the major networks (Visa, Mastercard, Amex, Discover, JCB,
    Diners, UnionPay, Maestro); an arbitrary Luhn-valid number is not a card."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    if two in (50, 56, 57, 58) or two == 67:
        return 12 <= n <= 19
    return False


def iban_valid(compact: str) -> bool:
    """ISO 13616: the country's length, then the mod-97 check on the rearranged number."""
    if len(compact) < 5 or IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    if not compact[2:4].isdigit() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000; and not the
    numbers the SSA reserves for advertising (987-65-4320 to 4329)."""
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return False
    return not (area == "987" and group == "65" and "4320" <= serial <= "4329")


def email_valid(value: str) -> bool:
    """RFC 5321 limits on the parts; no empty or doubled dots; alphabetic top-level label."""
    local, _, domain = value.rpartition("@")
    if not local or len(local) > 64 or len(value) > 254:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or any(not (1 <= len(x) <= 63) for x in labels):
        return False
    tld = labels[-1]
    return tld.isalpha() and len(tld) >= 2


def _phone_intl_valid(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 7 <= len(digits) <= 15 and digits[0] != "0"


def _nanp_valid(area: str, exchange: str) -> bool:
    """NANP: area and exchange codes start with 2-9; N11 service codes are not numbers."""
    return area[0] in "23456789" and exchange[0] in "23456789" and area[1:] != "11" and exchange[1:] != "11"


def _url_cred_valid(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return bool(parts.username) and bool(parts.password) and bool(parts.hostname)
    except ValueError:
        return False


def _ip_valid(value: str, version: int) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    if ip.version != version:
        return False
    # "1::2" looks like an address but so does "a::b" inside prose; ask for 3+ hex digits.
    return version == 4 or sum(c in "0123456789abcdefABCDEF" for c in value) >= 3


# ----------------------------------------------------------------------------------------- masking

def _mask_digits(value: str, keep_last: int) -> str:
    """Every digit or letter but the last ``keep_last`` becomes '*'; separators stay."""
    total = sum(c.isalnum() for c in value)
    seen = 0
    out = []
    for c in value:
        if c.isalnum():
            seen += 1
            out.append(c if seen > total - keep_last else "*")
        else:
            out.append(c)
    return "".join(out)


def mask_email(value: str) -> str:
    """``john.doe@example.com`` -> ``j***@e***.com``."""
    local, _, domain = value.rpartition("@")
    tld = domain.rsplit(".", 1)[-1]
    return f"{local[:1]}***@{domain[:1]}***.{tld}"


def mask_card(value: str) -> str:
    """``4111 1111 1111 1111`` -> ``**** **** **** 1111`` (the last four, as PCI DSS allows)."""
    return _mask_digits(value, 4)


def mask_iban(value: str) -> str:
    """Country code and last two characters: ``GB82 WEST ...32`` -> ``GB** **** ... **32``."""
    return value[:2] + _mask_digits(value[2:], 2)


def mask_ip(value: str) -> str:
    """First group kept: ``192.168.1.20`` -> ``192.*.*.*``."""
    sep = "." if "." in value and ":" not in value else ":"
    head, *rest = value.split(sep)
    return sep.join([head, *("*" if r else "" for r in rest)])


def mask_url_credentials(value: str) -> str:
    """User and password hidden, scheme and host kept: ``https://a***:****@host``."""
    scheme, _, rest = value.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    host = re.split(r"[/?#]", hostpart, maxsplit=1)[0]
    return f"{scheme}://{userinfo[:1]}***:****@{host}"


def mask_generic(value: str) -> str:
    """Last two digits kept (phones, SSNs): ``(212) 555-0142`` -> ``(***) ***-**42``."""
    return _mask_digits(value, 2)


# --------------------------------------------------------------------------------------- detectors

@dataclass(frozen=True)
class Match:
    """One validated match: its type, where it is, and how it may be shown (masked)."""

    pii_type: str
    start: int
    end: int
    masked: str


def _iter_email(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _EMAIL.finditer(text):
        value = m.group(0).rstrip(".-")
        if email_valid(value):
            yield m.start(), m.start() + len(value), mask_email(value)


def _iter_url(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _URL_CRED.finditer(text):
        value = m.group(0).rstrip(".,;:!?)")
        if _url_cred_valid(value):
            yield m.start(), m.start() + len(value), mask_url_credentials(value)


def _iter_iban(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _IBAN.finditer(text):
        raw = m.group(0)
        compact = raw.replace(" ", "")
        expected = IBAN_LENGTHS.get(compact[:2])
        if expected is None or len(compact) < expected:
            continue
        # The pattern may run on into a following upper-case word; cut at the country's length.
        kept, count = [], 0
        for ch in raw:
            if count == expected:
                break
            kept.append(ch)
            count += ch != " "
        value = "".join(kept)
        if iban_valid(value.replace(" ", "")):
            yield m.start(), m.start() + len(value), mask_iban(value)


def _iter_card(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _CARD.finditer(text):
        value = m.group(0)
        digits = re.sub(r"\D", "", value)
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and _card_brand_ok(digits):
            yield m.start(), m.end(), mask_card(value)


def _iter_ssn(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield m.start(), m.end(), mask_generic(m.group(0))


def _iter_ipv4(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _IPV4.finditer(text):
        if _ip_valid(m.group(0), 4):
            yield m.start(), m.end(), mask_ip(m.group(0))


def _iter_ipv6(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _IPV6.finditer(text):
        if _ip_valid(m.group(0), 6):
            yield m.start(), m.end(), mask_ip(m.group(0))


def _iter_phone(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _PHONE_INTL.finditer(text):
        if _phone_intl_valid(m.group(0)):
            yield m.start(), m.end(), mask_generic(m.group(0))
    for m in _PHONE_NANP.finditer(text):
        if _nanp_valid(m.group(1) or m.group(2), m.group(3)):
            yield m.start(), m.end(), mask_generic(m.group(0))


DETECTORS: dict[str, Callable[[str], Iterable[tuple[int, int, str]]]] = {
    "url_credentials": _iter_url,
    "email": _iter_email,
    "iban": _iter_iban,
    "payment_card": _iter_card,
    "us_ssn": _iter_ssn,
    "ipv4": _iter_ipv4,
    "ipv6": _iter_ipv6,
    "phone": _iter_phone,
}


def find_pii(text: str) -> list[Match]:
    """Validated PII matches in ``text``, each span counted once under the first type (in
    ``PII_TYPES`` order) that claims it."""
    taken: list[tuple[int, int]] = []
    found: list[Match] = []
    for pii_type in PII_TYPES:
        for start, end, masked in DETECTORS[pii_type](text):
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(Match(pii_type, start, end, masked))
    return sorted(found, key=lambda m: m.start)


@dataclass
class PiiCount:
    """Counts of one PII type in one dataset: matches, rows touched, columns, masked examples."""

    matches: int = 0
    rows: set[int] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)


def scan_columns(columns: dict[str, Sequence[object]], *, max_examples: int = 3,
                 progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None) -> dict[str, PiiCount]:
    """Scan named text columns (row-aligned); counts per PII type, with masked examples only.
    ``progress(items, total)`` wraps the row loop (a progress bar)."""
    counts = {t: PiiCount() for t in PII_TYPES}
    for name, values in columns.items():
        rows: Iterable[Any] = enumerate(values)
        if progress is not None:
            rows = progress(rows, len(values))
        for row, value in rows:
            if not isinstance(value, str) or not value:
                continue
            for match in find_pii(value):
                c = counts[match.pii_type]
                c.matches += 1
                c.rows.add(row)
                c.columns.add(name)
                if len(c.examples) < max_examples and match.masked not in c.examples:
                    c.examples.append(match.masked)
    return counts
