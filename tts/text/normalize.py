"""English text normalization: raw text -> plain words and simple punctuation, ready for gruut.

``normalize`` is deterministic and rule based (regular expressions, no model): it folds characters to
ASCII, expands currency, percentages, units, dates, times, years, ordinals, numbers, abbreviations,
roman numerals and acronyms into words, and reduces punctuation to ``, . ? !``, hyphens inside words
and apostrophes. Its output contains no digits. Number words are our own (American style, no "and":
"one hundred twenty-three").
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
import warnings
from collections.abc import Callable

__all__ = ["UnsupportedCharacterWarning", "cardinal", "normalize", "ordinal", "year_words"]


class UnsupportedCharacterWarning(UserWarning):
    """Some characters of the input could not be read and were dropped."""


# ----------------------------------------------------------------------------- number words


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ONES = _words("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
               "fifteen sixteen seventeen eighteen nineteen")  # fmt: skip
_TENS = _words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_SCALES = ((10**18, "quintillion"), (10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"),
           (10**6, "million"), (1000, "thousand"))  # fmt: skip
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}  # fmt: skip


def _digits(digits: str) -> str:
    """'007' -> 'zero zero seven'."""
    return " ".join(_ONES[int(d)] for d in digits)


def cardinal(n: int) -> str:
    """123 -> 'one hundred twenty-three'; -5 -> 'minus five'; 10**21 and up are read digit by digit."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            if n >= value * 1000:
                return _digits(str(n))
            high, rest = divmod(n, value)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal(n: int) -> str:
    """21 -> 'twenty-first'; 100 -> 'one hundredth'."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    pre, hyphen, last = last.rpartition("-")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + pre + hyphen + last


def year_words(year: int) -> str:
    """1999 -> 'nineteen ninety-nine', 1905 -> 'nineteen oh five', 2005 -> 'two thousand five',
    2024 -> 'twenty twenty-four', 1900 -> 'nineteen hundred'. Outside 1000..9999: ``cardinal``."""
    if not 1000 <= year <= 9999 or year % 1000 < 10:
        return cardinal(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {'oh ' if low < 10 else ''}{cardinal(low)}"


def _plural(words: str) -> str:
    """'nineteen ninety' -> 'nineteen nineties'; 'two thousand' -> 'two thousands'."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _number(text: str) -> str:
    """A number as written ('1,234', '-3.5', '.5', '007') -> words."""
    text = text.replace(",", "")
    sign = "minus " if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-+").partition(".")
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 18:
        words = _digits(whole)
    else:
        words = cardinal(int(whole)) if whole else ""
    if frac:
        words = f"{words} point {_digits(frac)}".strip()
    return sign + words


# ----------------------------------------------------------------------------- tables

_MONTHS = _words("January February March April May June July August September October November December")
_MONTH_RE = (r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
             r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")  # fmt: skip
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}  # fmt: skip
_MAGNITUDES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion",
               "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion"}
_UNITS = {"km": "kilometer", "cm": "centimeter", "mm": "millimeter", "kg": "kilogram", "mg": "milligram",
          "ml": "milliliter", "lb": "pound", "lbs": "pound", "oz": "ounce", "mph": "mile per hour",
          "km/h": "kilometer per hour", "ft": "foot", "mi": "mile", "°C": "degree Celsius",
          "°F": "degree Fahrenheit", "°": "degree"}  # fmt: skip
_UNIT_PLURALS = {"foot": "feet", "mile per hour": "miles per hour", "kilometer per hour": "kilometers per hour",
                 "degree Celsius": "degrees Celsius", "degree Fahrenheit": "degrees Fahrenheit"}
# Abbreviations that precede a name never end a sentence; the others may ("... and Sons Ltd. Next").
_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Gen": "General",
           "Capt": "Captain", "Lt": "Lieutenant", "Col": "Colonel", "Sgt": "Sergeant", "Rev": "Reverend",
           "Hon": "Honorable", "Gov": "Governor", "Sen": "Senator", "Rep": "Representative", "Mt": "Mount",
           "Ft": "Fort", "Messrs": "Messieurs"}  # fmt: skip
_ABBREVIATIONS = {"Jr": "Junior", "Sr": "Senior", "Inc": "Incorporated", "Ltd": "Limited", "Co": "Company",
                  "Corp": "Corporation", "Dept": "Department", "Ave": "Avenue", "Blvd": "Boulevard",
                  "Rd": "Road", "Univ": "University", "etc": "et cetera", "vs": "versus", "approx": "approximately",
                  "e.g": "for example", "i.e": "that is", "a.k.a": "also known as"}  # fmt: skip
# All-caps words read as words rather than spelled out ("NASA" -> "Nasa").
_WORD_ACRONYMS = frozenset(_words(
    "NASA NATO UNESCO UNICEF OPEC FIFA NAFTA LASER RADAR SCUBA AIDS COVID SARS PIN GIF JPEG SIM SWAT FEMA "
    "NASDAQ POTUS SCOTUS ZIP CAPTCHA IKEA LEGO RAM ROM DARPA OSHA INTERPOL BASIC COBOL FORTRAN WASP"
))
_CAPS_WORDS = {"OK": "okay"}
_ROMAN_CARDINAL_AFTER = frozenset(_words("war chapter part volume vol book act phase type class section "
                                         "article title level stage grade bowl episode"))  # fmt: skip
_YEAR_CONTEXT = frozenset(_words("in since by until till from to of year during circa around before after "
                                 "between and or early late mid summer winter spring autumn fall"))
_LETTER_FOLDS = {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d",
                 "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ı": "i"}  # fmt: skip
_SYMBOL_FOLDS = {"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
                 "″": '"', "«": '"', "»": '"', "–": "-", "‐": "-", "‑": "-", "−": "-", "—": " , ",
                 "―": " , ", "…": "...", "×": " times ", "⁄": "/", "·": " "}  # fmt: skip
_KEEP_NON_ASCII = set("£€¥°")


# ----------------------------------------------------------------------------- characters


def _fold_symbol(m: re.Match) -> str:
    """One non-ASCII character -> its ASCII stand-in, or itself: '’' -> "'", '½' -> ' 1/2 '."""
    c = m[0]
    if c in _SYMBOL_FOLDS or c in _LETTER_FOLDS:
        return _SYMBOL_FOLDS.get(c) or _LETTER_FOLDS[c]
    if unicodedata.category(c) == "No" and "⁄" in unicodedata.normalize("NFKC", c):
        return " " + unicodedata.normalize("NFKC", c).replace("⁄", "/") + " "  # vulgar fraction
    return c


def _fold_characters(text: str) -> tuple[str, list[str]]:
    """Map text to printable ASCII (plus ``_KEEP_NON_ASCII``) and newlines; returns (text, dropped)."""
    text = re.sub(r"[^\x00-\x7f]", _fold_symbol, text)
    text = unicodedata.normalize("NFKC", text)  # fullwidth letters, ligatures, superscripts
    text = unicodedata.normalize("NFKD", text)  # café -> cafe + combining accent, dropped below
    out: list[str] = []
    dropped: dict[str, None] = {}  # an ordered set
    for c in text:
        if " " <= c <= "~" or c == "\n" or c in _KEEP_NON_ASCII:
            out.append(c)
        elif c.isspace():
            out.append(" ")
        elif unicodedata.category(c) == "Mn" and out and out[-1].isascii():
            continue  # an accent on a Latin letter
        else:
            dropped[c] = None
            out.append("" if unicodedata.category(c) in ("Cc", "Cf", "Mn") else " ")
    return "".join(out), list(dropped)


# ----------------------------------------------------------------------------- rules


_NEW_SENTENCE = re.compile(r"\s*$|\s+[\"'(]*[A-Z]")
_CAPITAL_NEXT = re.compile(r"\s+[A-Z]")


def _ends_sentence(text: str, end: int) -> bool:
    """True if the text after ``end`` starts a new sentence (end of text, or a capital next)."""
    return _NEW_SENTENCE.match(text, end) is not None


def _currency(m: re.Match) -> str:
    sign, symbol, amount, magnitude = m.group(1), m.group(2), m.group(3), m.group(4)
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    sign = "minus " if sign else ""
    if magnitude:
        return f"{sign}{_number(amount)} {_MAGNITUDES[magnitude.lower()]} {many}"
    whole, _, frac = amount.replace(",", "").partition(".")
    if len(frac) > 2 or len(whole) > 18:
        return f"{sign}{_number(amount)} {many}"
    units, cents = int(whole or 0), int(frac.ljust(2, "0")) if frac else 0
    parts = [f"{cardinal(units)} {one if units == 1 else many}"] if units or not cents else []
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return sign + " and ".join(parts)


def _date(month: str, day: str | None, year: str | None, day_first: bool = False) -> str:
    name = _MONTHS[int(month) - 1] if month.isdigit() else next(n for n in _MONTHS if n.startswith(month[:3]))
    words = name
    if day is not None:
        words = f"the {ordinal(int(day))} of {name}" if day_first else f"{name} {ordinal(int(day))}"
    if year is None:
        return words
    year = year_words(int(year)) if len(year) == 4 else ("oh " if year[0] == "0" else "") + cardinal(int(year))
    return words + (", " if day is not None else " ") + year


def _valid_date(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _time(m: re.Match) -> str:
    hour, minute, meridiem = int(m.group(1)), m.group(2), m.group(3)
    if hour > 24 or (minute is not None and int(minute) > 59):
        return m.group(0).replace(":", " ")
    words = cardinal(hour)
    if minute is not None and int(minute) == 0 and not meridiem:
        words += " o'clock"
    elif minute is not None and int(minute) > 0:
        words += (" oh " if int(minute) < 10 else " ") + cardinal(int(minute))
    if meridiem:
        words += f" {meridiem[0].upper()} M"
        if m.group(0).endswith(".") and _ends_sentence(m.string, m.end()):
            words += "."
    return words


def _unit(m: re.Match) -> str:
    amount, unit = m.group(1), _UNITS[m.group(2)]
    if amount.replace(",", "") not in ("1", "-1"):
        unit = _UNIT_PLURALS.get(unit, unit + "s")
    return f"{_number(amount)} {unit}"


def _roman(m: re.Match) -> str:
    numeral, previous = m.group(2), m.group(1)
    values = {"I": 1, "V": 5, "X": 10}
    total = sum(-values[a] if values[a] < values[b] else values[a] for a, b in itertools.pairwise(numeral))
    total += values[numeral[-1]]
    if previous.lower() in _ROMAN_CARDINAL_AFTER:
        return f"{previous} {cardinal(total)}"
    return f"{previous} the {ordinal(total)}"


def _abbreviation(m: re.Match) -> str:
    word, start, end, text = m.group(1), m.start(), m.end(), m.string
    before = text[max(0, start - 40) : start].rstrip().rpartition(" ")[2]
    after_capital = _CAPITAL_NEXT.match(text, end) is not None
    before_name = before[:1].isupper() or before.endswith(("st", "nd", "rd", "th"))  # "Elm", "fifth"
    period = "." if _ends_sentence(text, end) else ""
    if word in ("Dr", "St"):
        if before_name and not after_capital:  # "Elm Dr." / "Baker St." vs "Dr. Smith" / "St. Louis"
            return ("Drive" if word == "Dr" else "Street") + period
        return "Doctor" if word == "Dr" else "Saint"
    if word in _TITLES:
        return _TITLES[word]
    return _ABBREVIATIONS[word if word in _ABBREVIATIONS else word.lower()] + period


def _acronym(m: re.Match, shouting: bool) -> str:
    word, plural = m.group(1), m.group(2) or ""
    if word in _CAPS_WORDS:
        return _CAPS_WORDS[word] + plural
    if word in _WORD_ACRONYMS:
        return word.capitalize() + plural
    if shouting or (len(word) > 4 and re.search("[AEIOUY]", word)):
        return word.lower() + plural
    return " ".join(word) + ("'s" if plural else "")  # gruut reads "C E O's" right, "C E Os" wrong


def _is_shouting(text: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", text)
    caps = [w for w in words if w.isupper() and w not in _WORD_ACRONYMS]
    return len(caps) >= 3 and len(caps) > 0.6 * len(words)


_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_SIGNED = rf"(?:(?<![\w.-])-)?(?<![\d.])(?<!\d,)(?:{_NUM})"  # never starts inside a number
_ABBREVIATION_RE = "|".join(re.escape(a) for a in ("Dr", "St", *_TITLES, *_ABBREVIATIONS, "Etc", "VS", "Vs"))
_RULES: tuple[tuple[re.Pattern, Callable[[re.Match], str]], ...] = tuple((re.compile(p), r) for p, r in (
    # an initial: "John F. Kennedy", "J. R. R. Tolkien"; not the end of spelled letters: "P M. Then"
    (r"(?<![\w.])(?<![A-Z] )([A-Z])\.(?=\s+[A-Z][a-z])", lambda m: m[1]),
    # phone numbers: digit groups, not a range
    (r"(?<![\d-])(?:(\d{3})-)?(\d{3})-(\d{4})(?![\d-])",
     lambda m: ", ".join(_digits(g) for g in m.groups() if g)),
    # currency: $5.50, -$3, £2 million, $3bn
    (rf"(?<![\w.])(-)?([$£€¥])\s?({_NUM})(?:\s?((?i:thousand|million|billion|trillion|[kmb]n?))\b)?", _currency),
    (rf"({_SIGNED})\s?%", lambda m: f"{_number(m.group(1))} percent"),
    # dates: 2024-05-05, 5/5/2024, May 5th, 2024, 5th of May 2024, May 2024
    (r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b",
     lambda m: _date(m[2], m[3], m[1]) if _valid_date(m[2], m[3]) else m[0].replace("-", " ")),
    (r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b",
     lambda m: _date(m[1], m[2], m[3]) if _valid_date(m[1], m[2]) else m[0].replace("/", " ")),
    (rf"\b{_MONTH_RE}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?", lambda m: _date(*m.groups())),
    (rf"\b(?:([Tt]he)\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE}\b(?:\.(?=,?\s+\d{{4}}))?(?:,?\s+(\d{{4}})\b)?",
     lambda m: (m[1] or "the") + _date(m[3], m[2], m[4], day_first=True)[3:]),
    (rf"\b{_MONTH_RE}\.?,?\s+(\d{{4}})\b", lambda m: _date(m[1], None, m[2])),
    # times: 3:30 pm, 15:45, 3pm, 7 a.m.
    (r"\b(\d{1,2})(?::(\d{2}))?\s*([aApP])\.?\s?[mM]\b\.?", _time),
    (r"\b(\d{1,2}):(\d{2})()\b", _time),
    (r"\b(\d+):(\d+)\b", lambda m: f"{_number(m[1])} to {_number(m[2])}"),  # ratio 3:1
    # units, ordinals, decades, years
    (rf"({_SIGNED})\s?(km/h|°[CF]|°|(?:km|cm|mm|kg|mg|ml|lbs?|oz|mph|ft|mi)\b)", _unit),
    (r"\b(\d{1,3}(?:,\d{3})+|\d{1,15})(?:st|nd|rd|th|ST|ND|RD|TH)\b", lambda m: ordinal(int(m[1].replace(",", "")))),
    (r"(?<![\w'])'?(\d{2}|\d{4})'?s\b",
     lambda m: _plural(year_words(int(m[1])) if len(m[1]) == 4 else cardinal(int(m[1])))
     if m[1].endswith("0") else m[0]),
    (r"\b([A-Za-z]+)(\s+)(\d{4})\b(?![.,]\d)",
     lambda m: m[1] + m[2] + (year_words(int(m[3])) if m[1].lower() in _YEAR_CONTEXT else m[3])),
    # a sentence that opens with a bare 4-digit number in 1100..1999 reads it as a year ("1964 saw ...",
    # "1500 people": "fifteen hundred"); 2000 and later stay cardinals ("2024 apples")
    (r"(?:^|(?<=[.!?]\s))(1[1-9]\d\d)\b(?![.,:/-]?\d)(?!\s*%)",
     lambda m: year_words(int(m[1]))),
    (r"\b(\d{4})\s*(AD|BC|BCE|CE|A\.D\.|B\.C\.)(?=\W|$)",
     lambda m: f"{year_words(int(m[1]))} {' '.join(m[2].replace('.', ''))}"),
    # abbreviations (before numbers so that "No. 5" still sees its digit)
    (r"\b(No|no)\.\s*(?=\d)", lambda m: "number "),
    (r"#\s*(?=\d)", lambda m: "number "),
    (rf"\b({_ABBREVIATION_RE})\.(?!\w)", _abbreviation),
    (r"\b(Mrs?|Ms|Dr)(?=\s+[A-Z])", lambda m: _TITLES.get(m[1], "Doctor")),
    (r"\bvs\b", lambda m: "versus"),
    # initialisms with dots: U.S.A. -> U S A
    (r"\b((?:[A-Za-z]\.){2,})",
     lambda m: " ".join(m[1].replace(".", "").upper()) + ("." if _ends_sentence(m.string, m.end()) else "")),
    # roman numerals after a name or a counted noun: "Henry VIII", "World War II"
    (r"\b([A-Z][a-z]+) ((?:X{0,3})(?:IX|IV|V?I{0,3}))\b(?<=[IVX]{2})", _roman),
    # remaining numbers: ranges, fractions, decimals, negatives, integers
    (r"(?<![\d.,/-])(\d+)-(\d+)(?![\d-])", lambda m: f"{_number(m[1])} to {_number(m[2])}"),
    (r"\b(\d{1,6})\s+(\d{1,6})/(\d{1,6})\b",
     lambda m: f"{cardinal(int(m[1]))} and {_fraction(int(m[2]), int(m[3]))}" if int(m[2]) < int(m[3]) else m[0]),
    (r"\b(\d{1,6})/(\d{1,6})\b", lambda m: _fraction(int(m[1]), int(m[2]))),
    (rf"(?<![\w.-])-(?={_NUM})", lambda m: "minus "),
    (_NUM, lambda m: f" {_number(m[0])} "),
    # symbols
    (r"&", lambda m: " and "), (r"\+", lambda m: " plus "), (r"=", lambda m: " equals "),
    (r"@", lambda m: " at "),
))  # fmt: skip


def _fraction(numerator: int, denominator: int) -> str:
    if denominator in (0, 1):
        return f"{cardinal(numerator)} over {cardinal(denominator)}"
    name = {2: "half", 4: "quarter"}.get(denominator) or ordinal(denominator)
    if numerator != 1:
        name = "halves" if name == "half" else name + "s"
    return f"{cardinal(numerator)} {name}"


def _apostrophe_or_hyphen(m: re.Match) -> str:
    """Keep one ' or - between letters (don't, mid-century); any other run becomes a space."""
    text, start, end = m.string, m.start(), m.end()
    inside = 0 < start and end < len(text) and text[start - 1].isalpha() and text[end].isalpha()
    return m[0] if inside and end - start == 1 else " "


def _clean_punctuation(text: str) -> str:
    text = re.sub(r"[\"*_^`|\\<>{}\[\]~#$%£€¥°/]", " ", text)
    text = re.sub(r"[()]", ",", text)
    text = re.sub(r"\.{2,}|[;:]|\s-+\s|--+", ",", text)  # ellipsis, ; : and dashes are pauses
    text = re.sub(r"['-]+", _apostrophe_or_hyphen, text)
    text = re.sub(r"\s+", " ", text)
    # a run of punctuation becomes its strongest member: "?!" -> "?", ",." -> "."
    text = re.sub(r"\s*([,.?!](?:\s*[,.?!])*)",
                  lambda m: next((p for p in "?!." if p in m[1]), ",") + " ", text)  # fmt: skip
    return re.sub(r"\s+", " ", text).strip().lstrip(",.?! ")


def normalize(text: str) -> str:
    """Raw English text -> speakable words with ``, . ? !`` punctuation (no digits, ASCII only).

    Characters that cannot be read (emoji, non-Latin scripts, control characters) are dropped with
    one ``UnsupportedCharacterWarning`` listing them. A blank line ends a sentence. Returns "" when
    nothing speakable is left (the caller decides whether that is an error).

    Example: "Dr. Smith paid $5.50 on May 5th, 2024." ->
    "Doctor Smith paid five dollars and fifty cents on May fifth, twenty twenty-four."
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text, dropped = _fold_characters(text)
    if dropped:
        listed = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in dropped[:20])
        more = f" and {len(dropped) - 20} more" if len(dropped) > 20 else ""
        warnings.warn(f"dropped {len(dropped)} unsupported character(s): {listed}{more}",
                      UnsupportedCharacterWarning, stacklevel=2)  # fmt: skip
    text = re.sub(r"([^.?!\s])[ \t]*\n\s*\n", r"\1.\n\n", text)  # a paragraph ends a sentence
    text = re.sub(r"\s+", " ", text)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    sentences = []
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        shouting = _is_shouting(sentence)
        spell = functools.partial(_acronym, shouting=shouting)
        sentences.append(re.sub(r"\b([A-Z]{2,})((?:'s|s)?)\b", spell, sentence))
    text = " ".join(sentences)
    return _clean_punctuation(text)
