"""Claims: everything in a draft that a customer could act on, pulled out so each can be checked against the facts.

A pattern list ("no '% off'") is beaten by the first paraphrase ("we will take ninety percent off"). So the
validators do not look for bad phrases; they extract every *claim* from subject, body and call to action and
accept only the ones a fact backs. This module does the extraction:

- text is normalised first: Unicode compatibility forms (full-width digits), zero-width characters removed,
  obfuscated links undone ("pay dot example", "example[.]com", "hxxp"), fractions ("half", "a tenth") and
  number words ("ninety", "twenty-five") turned into digits with text2num;
- ``number``, ``money``, ``percent`` and ``fraction`` claims carry their value; ``discount`` covers a price cut
  however phrased (off, less, reduction, cheaper, discount, coupon) and ``giveaway`` what is given away (free
  months, waived fees, credits, "on us");
- ``date`` and ``deadline`` claims (explicit dates; "offer ends Friday", "today only", "within 48 hours");
- ``url`` (links and bare domains, recognised with the public-suffix list bundled in tldextract: no
  network), ``email`` and ``phone`` (Google's libphonenumber) claims;
- ``account`` claims: any other customer named by id, name or domain, however cased, spaced or hyphenated,
  and "other customers like …";
- ``credential`` and ``payment`` claims: requests for passwords, codes, keys, card or bank details, and
  payment routes outside the product (wire transfers, gift cards, "pay today at …"), which are never allowed.

:mod:`outreach.drafting.validation` decides which claims the facts back.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import phonenumbers
import tldextract
from text_to_num import alpha2digit

ClaimKind = Literal[
    "number", "money", "percent", "fraction", "discount", "giveaway", "date", "deadline", "url", "email",
    "phone", "account", "credential", "payment",
]

# Names the IETF reserves for documentation and testing (RFC 2606, RFC 6761): not in the public-suffix list,
# but a link to one is still a link.
RESERVED_SUFFIXES = ("example", "test", "invalid", "localhost", "local")


@dataclass(frozen=True, slots=True)
class Claim:
    """One checkable statement: its kind, the words as written (normalised), and its value when it has one
    (a number, a host, an email address, a phone number in E.164, an account id)."""

    kind: ClaimKind
    text: str
    value: float | str | None = None


# ------------------------------------------------------------------------------------------------ normalising

_ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_DOT = re.compile(r"(?i)(?<=\w)\s*(?:\[\s*\.\s*\]|\(\s*\.\s*\)|\{\s*\.\s*\}|\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\}"
                  r"|\s+dot\s+)\s*(?=[a-z0-9])")
_AT = re.compile(r"(?i)(?<=\w)\s*(?:\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\})\s*(?=\w)")
_HXXP = re.compile(r"(?i)\bh(?:xx|\*\*)p(s?)://")
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": " - ", "\u2212": "-"})

_FRACTIONS = {
    "half": 0.5, "third": 1 / 3, "quarter": 0.25, "fourth": 0.25, "fifth": 0.2, "sixth": 1 / 6,
    "tenth": 0.1, "twentieth": 0.05,
}
_FRACTION = re.compile(
    r"(?i)\b(?:(?P<count>a|an|one|two|three|four|nine)[\s-]+)?(?P<part>half|third|quarter|fourth|fifth|sixth|tenth"
    r"|twentieth)s?\b(?P<of>\s+(?:off|of|price)\b)?"
)
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "nine": 9}
#: Fractions are written as these symbols before number words become digits ("a tenth" must not become
#: "a 10th"); other values as decimals.
FRACTION_SYMBOLS = {0.5: "½", round(1 / 3, 4): "⅓", round(2 / 3, 4): "⅔", 0.25: "¼", 0.75: "¾", 0.2: "⅕",
                    round(1 / 6, 4): "⅙", 0.1: "⅒"}
_SYMBOL_VALUES = {symbol: value for value, symbol in FRACTION_SYMBOLS.items()}
_FRACTION_SYMBOL = re.compile("[" + "".join(_SYMBOL_VALUES) + "]")


def _fraction_value(match: re.Match[str]) -> float | None:
    """The value of 'half', 'a tenth', 'two thirds' … or None when the word is not a fraction here
    ('this quarter', 'the third step')."""
    part = match.group("part").lower()
    count = match.group("count")
    if part == "half":
        return 0.5 * (_COUNTS[count.lower()] if count and count.lower() not in ("a", "an") else 1)
    if count is None and match.group("of") is None:
        return None
    return round(_FRACTIONS[part] * _COUNTS[(count or "a").lower()], 4)


def _fraction_symbol(match: re.Match[str]) -> str:
    value = _fraction_value(match)
    if value is None:
        return match.group(0)
    written = FRACTION_SYMBOLS.get(value) or f"{value:g}"
    return written + (match.group("of") or "")


def normalise(text: str) -> str:
    """The text claims are read from: compatibility forms, no zero-width characters, de-obfuscated links and
    addresses, dashes as hyphens, and numbers in digits ('ninety percent' → '90 percent')."""
    clean = unicodedata.normalize("NFKC", text)
    clean = _ZERO_WIDTH.sub("", clean).translate(_DASHES)
    clean = _HXXP.sub(lambda m: f"http{m.group(1)}://", clean)
    clean = _DOT.sub(".", clean)
    clean = _AT.sub("@", clean)
    clean = _FRACTION.sub(_fraction_symbol, clean)
    try:
        converted = alpha2digit(clean, "en")
    except Exception:  # pragma: no cover - text2num rejects nothing we know of; never let it stop validation
        converted = clean
    return re.sub(r"(?i)\btwo\b(?![\s-]+(?:third|quarter|fifth|tenth))", "2", converted)


# ------------------------------------------------------------------------------------------------ links

_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>()\"'\]\[]+")
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+@((?:[a-z0-9-]+\.)+[a-z0-9-]+)")
_HOST = re.compile(r"(?i)(?<![\w@./-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9])\b(/[^\s<>\"']*)?")


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    """The public-suffix list snapshot that ships inside tldextract: no download, no cache directory."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, extra_suffixes=RESERVED_SUFFIXES)


def is_hostname(candidate: str) -> bool:
    """True when ``candidate`` ends in a public suffix and has a name before it ('evil.co.uk', 'bit.ly'),
    not 'report.csv' or 'e.g'."""
    parts = _extractor()(candidate.lower().strip("."))
    return bool(parts.suffix) and bool(parts.domain)


def _trim(url: str) -> str:
    return url.rstrip(".,;:!?)'\"")


def link_spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, host, as written) for every URL, email address and bare domain in ``text``."""
    found: list[tuple[int, int, str, str]] = []
    for match in _URL.finditer(text):
        written = _trim(match.group(0))
        url = written if "://" in written else "http://" + written
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        found.append((match.start(), match.start() + len(written), host.lower(), written))
    taken = [(s, e) for s, e, _, _ in found]

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for match in _EMAIL.finditer(text):
        if free(match.start(), match.end()):
            found.append((match.start(), match.end(), "@" + match.group(1).lower(), match.group(0)))
            taken.append((match.start(), match.end()))
    for match in _HOST.finditer(text):
        host = match.group(1)
        if free(match.start(), match.end()) and is_hostname(host):
            written = _trim(match.group(0))
            found.append((match.start(), match.start() + len(written), host.lower(), written))
            taken.append((match.start(), match.end()))
    return sorted(found)


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the spans replaced by spaces (positions kept)."""
    parts: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        start, end = max(start, cursor), min(end, len(text))
        if end <= start:
            continue
        parts.append(text[cursor:start])
        parts.append(" " * (end - start))
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ numbers

_NUMBER = re.compile(r"(?<![\w.½⅓⅔¼¾⅕⅙⅒])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d)(?!(?:st|nd|rd|th)\b)")
_MONEY = re.compile(
    r"(?i)(?:(?:[$€£¥]|\b(?:usd|eur|gbp|us\$)\s?)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(\s?[km]\b)?"
    r"|\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(\s?[km])?\s?(?:usd|eur|gbp|dollars?|bucks|euros?|pounds?)\b)"
)
_PERCENT = re.compile(r"(?i)(?<![\w.])(\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b|pct\b)")


def _number(whole: str, fraction: str | None) -> float:
    digits = whole.replace(",", "")
    return float(f"{digits}.{fraction}") if fraction else float(digits)


# ------------------------------------------------------------------------------------------------ dates

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_MONTH_NUMBER = {name: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for name in names}
_DATE = re.compile(
    rf"(?i)\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<m1>{_MONTHS})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y1>\d{{4}}))?"
    rf"|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTHS})\b\.?(?:,?\s+(?P<y2>\d{{4}}))?"
    r"|\b(?P<n1>\d{1,2})/(?P<n2>\d{1,2})(?:/(?P<ny>\d{2,4}))?\b"
)


def _date_value(match: re.Match[str]) -> str:
    """'MM-DD' or 'YYYY-MM-DD' for a date match (the year only when written)."""
    if match.group("iso"):
        return match.group("iso")
    if match.group("m1") or match.group("m2"):
        month = _MONTH_NUMBER[(match.group("m1") or match.group("m2")).lower().rstrip(".")]
        day = int(match.group("d1") or match.group("d2"))
        year = match.group("y1") or match.group("y2")
    else:
        month, day, year = int(match.group("n1")), int(match.group("n2")), match.group("ny")
        if year and len(year) == 2:
            year = "20" + year
    return f"{year}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def _valid_date(value: str) -> bool:
    month, day = (int(part) for part in value.split("-")[-2:])
    return 1 <= month <= 12 and 1 <= day <= 31


_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|midnight|today|noon)"
_DEADLINE = re.compile(
    r"(?i)\b(?:"
    r"(?:offer|deal|price|pricing|discount|promotion|promo|rate|this|it|which|that)\s+(?:only\s+)?(?:ends|expires|runs out"
    r"|is (?:only )?(?:valid|good|available) (?:until|till|through|for))"
    r"|expir(?:es|ing|y|ation)\b(?:\s+(?:on|at|in|by|date|soon|" + _WEEKDAY + r"))?"
    r"|(?:valid|available|good) (?:until|till|through)\b"
    r"|deadline|last chance|final (?:chance|call|notice)|today only|this week only|now or never|before it(?:'s| is) (?:gone|too late)"
    r"|only (?:until|till|through|today|tonight|this week|for the next)"
    r"|(?:until|till|by|before) (?:the )?end of (?:the |this )?(?:day|week|month|quarter|year)"
    r"|(?:until|till|by|before) " + _WEEKDAY +
    r"|(?:within|in the next) \d+ (?:hours?|hrs?|minutes?|business days|days)\b"
    r"|\d+[- ]hours? (?:window|offer|deal|sale|only)\b"
    r"|while (?:supplies|stocks?|it|they) lasts?|(?:act|reply|respond|decide|sign|upgrade|pay|confirm) (?:now|immediately|right away|asap)"
    r"|hurry|don'?t wait|running out of time|time[- ]sensitive|urgent(?:ly)?"
    r")"
)


# ------------------------------------------------------------------------------------------------ money words

_DISCOUNT = re.compile(
    r"(?i)("
    r"\d+(?:\.\d+)?\s?(?:%|percent|per cent|pct)\s?(?:off|less|lower|cheaper|discount|reduction|savings?|below|under|"
    r"cut|down|back)\b"
    r"|\b(?:off|save|saves|saving|savings|discount(?:ed)?|reduction|reduce[sd]?|cut|cuts|knock(?:s|ed)?|take[sn]?|taking"
    r"|slash(?:es|ed)?|lower(?:s|ed)?|drop(?:s|ped)?)\s(?:(?:it|the price|your bill|the cost|that)\s)?(?:of\s|by\s)?"
    r"(?:up to\s|almost\s|nearly\s|over\s)?\d+(?:\.\d+)?\s?(?:%|percent|per cent|pct)"
    r"|\b(?:knock|take|shave|cut)\w*\s[^.!?\n]{0,25}?\boff (?:the |your |of the )?(?:bill|price|invoice|cost|plan|fee|total)s?\b"
    r"|\bdiscount\w*|\bcoupons?\b|\bvouchers?\b|\bpromo(?:tion|tional)?(?: code)?\b|[½⅓¼⅕⅒][\s-]?(?:off|price)\b"
    r"|\b(?:price|cost|bill|invoice|rate|fee)s?\s(?:cut|reduction|drop|decrease|break)\b"
    r"|\b(?:reduce|lower|cut|slash|drop|knock down|bring down|halve)\s(?:the\s|your\s|its\s)?(?:price|cost|bill|rate|invoice|fee)s?\b"
    r"|\bcheaper\b|\bmarkdown\b|\bspecial (?:price|pricing|rate|deal|offer)\b|\breduced (?:price|rate|pricing|fee)\b"
    r"|\b(?:lower|better|best|introductory|loyalty|friends and family) (?:price|pricing|rate)\b"
    r"|\bprice match\w*|\bmoney[- ]back\b|\bfor less\b"
    r")"
)
_GIVEAWAY = re.compile(
    r"(?i)("
    r"\bfor free\b|\bfree of charge\b|\bat no (?:extra |additional )?(?:cost|charge)\b|\bno (?:extra |additional )?charge\b"
    r"|\bfree\s(?:months?|weeks?|years?|trial|upgrade|seats?|plan|access|add-?ons?|licen[cs]es?|for)\b"
    r"|\b(?:\d+|a|one|an extra|extra)\s(?:months?|weeks?|years?|seats?)\s(?:free|on us|on the house|at no cost)\b"
    r"|\b(?:is|are|be|it's|its|becomes?|stays?)\s(?:now\s|completely\s|totally\s|entirely\s|basically\s)?free\b"
    r"|\bon the house\b|\b(?:is|are|be|it's|month|months|year|seat|seats|that's)\s(?:all\s)?on us\b|\bcomplimentary\b"
    r"|\bgratis\b|\bno[- ]cost\b"
    r"|\bwaiv(?:e|es|ed|ing|er)\b|\brefund\w*|\brebates?\b|\bcash ?back\b|\bbilling credit\b|\baccount credit\b"
    r"|\b(?:a|an|one-time|service|\$[\d,.]+|\d+)\s(?:\w+\s)?credits?\b(?!\s+union)|\bcredit (?:of|for|toward|towards|on)\b"
    r"|(?<![-\w])free(?![-\w])(?!\s(?:up|to|of|from|form)\b)"
    r"|\b(?:lock|locking) in (?:the |your |a |an |today's )?(?:old |current |lower |present )?(?:price|rate)\b"
    r"|\bgrandfather\w*\b|\bprice freeze\b"
    r")"
)
_FEEL_FREE = re.compile(r"(?i)\b(?:feel|are|be)\s+free\s+to\b|\bfree\s+(?:up|of errors)\b|\btoll[- ]free\b|\bhands[- ]free\b")


# ------------------------------------------------------------------------------------------------ never allowed

_SECRET = (r"(?:(?:password|passcode|passphrase|pass code|pin code|pin number|login (?:details|credentials|info\w*)"
           r"|credentials|user ?name and password|api (?:key|token|secret)|secret key|access (?:key|token)|auth(?:entication)? token"
           r"|(?:2fa|mfa) codes?|one[- ]time (?:code|password|passcode)|otp|verification code|security code|recovery code"
           r"|backup code|ssn|social security(?: number)?|sign[- ]in details)s?"
           r"(?!\s*(?:resets?|policy|policies|rules|manager|requirements|expiry|changes?)\b))")
_CREDENTIAL = re.compile(
    rf"(?i)\b(?:(?:send|share|reply with|email|e-mail|give|provide|confirm|verify|enter|type|tell|paste|forward|submit"
    rf"|text|dm|read out|include)\b[^.?!\n]{{0,40}}?\b{_SECRET}\b"
    rf"|\byour (?:admin |account |workspace |current |team )?{_SECRET}\b"
    rf"|\b{_SECRET}\b[^.?!\n]{{0,30}}\b(?:to (?:me|us)|in (?:your |a )?reply|by (?:email|reply|phone)|over the phone)\b)"
)
_PAYMENT = re.compile(
    r"(?i)\b(?:card (?:number|details|info\w*)|credit card|debit card|cvv|cvc|cv2|expiry date|expiration date"
    r"|bank (?:details|account|transfer|wire|info\w*)|wire (?:transfer|the|us|payment|money|funds)|wired? transfers?"
    r"|routing number|account number|iban|swift(?: code)?|bic code|sort code|gift ?cards?|bitcoin|btc|crypto\w*"
    r"|ethereum|usdt|tether|wallet address|paypal|venmo|zelle|cash ?app|western union|moneygram"
    r"|payment (?:link|details|info\w*|portal|page)|billing (?:details|info\w*)"
    r"|(?:send|make|transfer|remit) (?:the |your |a |an )?(?:payment|money|funds|deposit|fee)"
    r"|pay (?:now|today|here|immediately|upfront|up front|in advance|via|by (?!the month)|at|through|using|directly|us|me|online at)"
    r"|(?:settle|clear) (?:the |your )?(?:invoice|balance|bill)"
    r"|invoice[^.?!\n]{0,30}\bpaid to)\b"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
_OTHER_CUSTOMERS = re.compile(
    r"(?i)\b(?:other|another|fellow)\s(?:of our\s)?(?:customers?|clients?|companies|accounts?)\s(?:like|such as|including"
    r"|e\.g\.|for example|for instance|(?:have\s|already\s)?(?:did|made|switched|upgraded|moved))"
)


_VAGUE_DISCOUNT = re.compile(
    r"(?i)coupon|voucher|promo|\bcode\b|cheaper|special|lower|better|best|introductory|loyalty|friends|price match"
    r"|markdown|for less|money[- ]back|knock|shave|slash|cut|halve|break|[½⅓¼⅕⅒]"
)


def vague_discount(text: str) -> bool:
    """A price cut phrased as a deal (coupon, special pricing, cheaper, knock something off) rather than as
    the offer's own percentage: no fact ever backs one."""
    return _VAGUE_DISCOUNT.search(text) is not None


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# ------------------------------------------------------------------------------------------------ accounts


def name_key(text: str) -> str:
    """An account id, name or domain as compared: case-folded, every run of non-alphanumerics one space."""
    return " ".join(re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold()))


@dataclass(frozen=True, slots=True)
class AccountName:
    account_id: str
    key: str
    written: str


class AccountIndex:
    """Every account's id, name and domain (and the domain without its suffix) by :func:`name_key`, so a draft
    is scanned once for all of them: 'Ticket-Cluster', 'ticket cluster' and 'TICKET_CLUSTER' are one name."""

    def __init__(self, accounts: Iterable[tuple[str, str, str | None]], *, min_chars: int = 3) -> None:
        self.names: dict[str, list[AccountName]] = {}
        self.longest = 1
        for account_id, name, domain in accounts:
            forms = {account_id, name}
            if domain:
                forms.add(domain)
                registered = _extractor()(domain)
                if registered.domain and len(registered.domain) >= 5:
                    forms.add(registered.domain)
            keys: set[str] = set()
            for form in sorted(forms):
                key = name_key(form)
                if len(key.replace(" ", "")) < min_chars or key in keys:
                    continue
                keys.add(key)
                self.names.setdefault(key, []).append(AccountName(account_id, key, form))
                self.longest = max(self.longest, len(key.split()))

    def find(self, text: str) -> list[AccountName]:
        """Every account name that occurs in ``text`` as whole words, longest first where they overlap."""
        words = name_key(text).split()
        found: list[AccountName] = []
        i = 0
        while i < len(words):
            for width in range(min(self.longest, len(words) - i), 0, -1):
                hits = self.names.get(" ".join(words[i : i + width]))
                if hits:
                    found.extend(hits)
                    i += width - 1
                    break
            i += 1
        return found


# ------------------------------------------------------------------------------------------------ extraction


def extract_claims(text: str, accounts: AccountIndex | None = None) -> list[Claim]:
    """Every claim in ``text`` (already joined from subject, body and call to action), in kind order."""
    clean = normalise(text)
    claims: list[Claim] = []

    links = link_spans(clean)
    for _, _, host, written in links:
        if host.startswith("@"):
            claims.append(Claim("email", written, written.lower()))
        else:
            claims.append(Claim("url", written, host))
    rest = _blank(clean, ((s, e) for s, e, _, _ in links))

    dates = [m for m in _DATE.finditer(rest) if _valid_date(_date_value(m))]
    for match in dates:
        claims.append(Claim("date", match.group(0), _date_value(match)))
    for match in _DEADLINE.finditer(rest):
        claims.append(Claim("deadline", match.group(0).strip()))
    rest = _blank(rest, ((m.start(), m.end()) for m in dates))

    phones: list[tuple[int, int]] = []
    for found in phonenumbers.PhoneNumberMatcher(rest, "US", leniency=phonenumbers.Leniency.POSSIBLE):
        raw = found.raw_string
        digits = re.sub(r"\D", "", raw)
        if not raw.startswith("+") and not re.search(r"[\s().-]", raw) and len(digits) < 10:
            continue  # a bare count like 1000000, not a phone number
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", raw):
            continue
        e164 = phonenumbers.format_number(found.number, phonenumbers.PhoneNumberFormat.E164)
        claims.append(Claim("phone", raw, e164))
        phones.append((found.start, found.end))
    for match in _CARD.finditer(rest):
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits):
            claims.append(Claim("payment", match.group(0), "card number"))
            phones.append((match.start(), match.end()))
    rest = _blank(rest, phones)

    for match in _MONEY.finditer(rest):
        whole, cents, scale = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
            match.group(4), match.group(5), match.group(6))
        amount = _number(whole, cents) * {"k": 1_000, "m": 1_000_000}.get((scale or "").strip().lower(), 1)
        claims.append(Claim("money", match.group(0).strip(), round(amount, 2)))
    for match in _PERCENT.finditer(rest):
        claims.append(Claim("percent", match.group(0), float(match.group(1))))
    for match in _FRACTION_SYMBOL.finditer(rest):
        claims.append(Claim("fraction", match.group(0), _SYMBOL_VALUES[match.group(0)]))
    for match in _NUMBER.finditer(rest):
        claims.append(Claim("number", match.group(0), _number(match.group(1), match.group(2))))

    for match in _DISCOUNT.finditer(rest):
        claims.append(Claim("discount", match.group(0).strip(), _pct_near(rest, match)))
    allowed_free = [(m.start(), m.end()) for m in _FEEL_FREE.finditer(rest)]
    for match in _GIVEAWAY.finditer(rest):
        if any(s <= match.start() < e for s, e in allowed_free):
            continue
        claims.append(Claim("giveaway", match.group(0).strip()))

    for match in _CREDENTIAL.finditer(rest):
        claims.append(Claim("credential", match.group(0).strip()))
    for match in _PAYMENT.finditer(rest):
        claims.append(Claim("payment", match.group(0).strip()))
    for match in _IBAN.finditer(clean):
        claims.append(Claim("payment", match.group(0), "iban"))

    for match in _OTHER_CUSTOMERS.finditer(rest):
        claims.append(Claim("account", match.group(0), None))
    if accounts is not None:
        for name in accounts.find(clean):
            claims.append(Claim("account", name.written, name.account_id))
    return claims


def _pct_near(text: str, match: re.Match[str]) -> float | None:
    """The percentage a discount phrase states, in the phrase or elsewhere in its sentence."""
    inside = _PERCENT.search(match.group(0))
    if inside:
        return float(inside.group(1))
    start = max(text.rfind(".", 0, match.start()), text.rfind("\n", 0, match.start())) + 1
    end_candidates = [i for i in (text.find(".", match.end()), text.find("\n", match.end())) if i >= 0]
    sentence = text[start : min(end_candidates) if end_candidates else len(text)]
    near = _PERCENT.search(sentence)
    return float(near.group(1)) if near else None


def numbers_in(text: str) -> list[tuple[float, str]]:
    """Every number in ``text`` with its spelling (digits or words, money, percentages, fractions); links,
    email addresses and dates are skipped (their digits are not quantities). The light path of
    :func:`extract_claims`, used on every fact string."""
    clean = normalise(text)
    rest = _blank(clean, ((s, e) for s, e, _, _ in link_spans(clean)))
    rest = _blank(rest, ((m.start(), m.end()) for m in _DATE.finditer(rest) if _valid_date(_date_value(m))))
    found = [(_SYMBOL_VALUES[m.group(0)], m.group(0)) for m in _FRACTION_SYMBOL.finditer(rest)]
    found += [(_number(m.group(1), m.group(2)), m.group(0)) for m in _NUMBER.finditer(rest)]
    return found


def claims_of(kind: ClaimKind, claims: Sequence[Claim]) -> list[Claim]:
    return [claim for claim in claims if claim.kind == kind]
