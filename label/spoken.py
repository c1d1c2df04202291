"""The spoken form of a label: how much was *said*, for the speaking-rate filter.

A label is written far shorter than it is spoken wherever it holds a number, a
symbol, a URL or an acronym: "50% 50%" is five characters per half but "fifty
percent" aloud, "2001" is "two thousand and one", "www.apache.org" is
"double-u double-u double-u dot apache dot org". Measured on written characters,
every such window looks slow and the speaking-rate filter dropped them although
they were transcribed right. So the rate is measured on this spoken form:
numbers through ``num2words`` (a pure-Python package that spells numbers in
some 50 languages, years as years), symbols and dotted names through small
per-language word tables, capitals-only words letter by letter. Where a
language has no table, a symbol counts as ``UNKNOWN_SYMBOL_CHARS`` letters and
digits stay as written, which is what they were before.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

UNKNOWN_SYMBOL_CHARS = 5  # letters one spoken symbol is taken to be where a language has no word for it
MAX_ACRONYM_LETTERS = 6  # a capitals-only word this long or shorter is read letter by letter ("GPL", "HTTP")
YEAR_RANGE = (1100, 2099)  # four-digit integers here are read as years ("two thousand and one", "nineteen ninety")

# Words for the symbols a transcript writes in place of speech; "." only between letters or
# digits (a domain, a version, a decimal point), never as a full stop.
SYMBOL_WORDS: dict[str, dict[str, str]] = {
    "en": {"%": "percent", "&": "and", "@": "at", "/": "slash", "+": "plus", "=": "equals", "#": "number",
           "$": "dollars", "€": "euros", "£": "pounds", "°": "degrees", "*": "star", ".": "dot", "×": "times"},
    "es": {"%": "por ciento", "&": "y", "@": "arroba", "/": "barra", "+": "más", "=": "igual", "#": "número",
           "$": "dólares", "€": "euros", "°": "grados", ".": "punto"},
    "fr": {"%": "pour cent", "&": "et", "@": "arobase", "/": "slash", "+": "plus", "=": "égale", "#": "dièse",
           "$": "dollars", "€": "euros", "°": "degrés", ".": "point"},
    "de": {"%": "prozent", "&": "und", "@": "at", "/": "schrägstrich", "+": "plus", "=": "gleich", "#": "nummer",
           "$": "dollar", "€": "euro", "°": "grad", ".": "punkt"},
    "pt": {"%": "por cento", "&": "e", "@": "arroba", "/": "barra", "+": "mais", "=": "igual", "$": "dólares",
           "€": "euros", "°": "graus", ".": "ponto"},
    "it": {"%": "per cento", "&": "e", "@": "chiocciola", "/": "barra", "+": "più", "=": "uguale", "$": "dollari",
           "€": "euro", "°": "gradi", ".": "punto"},
    "zh": {"%": "百分之", "&": "和", "@": "艾特", "/": "斜杠", "+": "加", "=": "等于", "$": "美元", "€": "欧元",
           "°": "度", ".": "点"},
    "ja": {"%": "パーセント", "&": "アンド", "@": "アット", "/": "スラッシュ", "+": "プラス", "=": "イコール",
           "$": "ドル", "€": "ユーロ", "°": "度", ".": "ドット"},
}
# English letter names, for capitals-only words read letter by letter.
LETTER_NAMES_EN = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                           ("ay", "bee", "see", "dee", "ee", "ef", "gee", "aitch", "eye", "jay", "kay", "el", "em",
                            "en", "oh", "pee", "cue", "ar", "ess", "tee", "you", "vee", "double you", "ex", "why",
                            "zed")))
LETTERS_PER_NAME = 2  # letters a spelled-out capital is taken to be in languages without a table

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+|\S", re.UNICODE)


def spoken_form(text: str, language: str) -> str:
    """``text`` as it would be said: numbers, symbols, dotted names and acronyms in words."""
    lang = (language or "").split("-")[0].lower()
    text = unicodedata.normalize("NFKC", text)
    words = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _NUMBER.fullmatch(token):
            words.append(number_words(token, lang))
        elif token.isalpha():
            words.append(acronym_words(token, lang) if _is_acronym(token) else token)
        elif token == "." and not _glued(text, match.start()):
            continue  # a full stop is not spoken
        elif unicodedata.category(token)[0] == "S" or token in "%&@/#*.":
            words.append(symbol_words(token, lang))
    return " ".join(words)


def spoken_chars(text: str, language: str) -> int:
    """Non-space characters of the spoken form (the numerator of the speaking rate)."""
    return sum(not c.isspace() for c in spoken_form(text, language))


def number_words(token: str, lang: str) -> str:
    """A number in words (a year as a year); as written where num2words lacks the language."""
    converter = _num2words()
    value = token.replace(",", ".") if lang not in ("en", "ja", "zh", "ko") else token.replace(",", "")
    try:
        number = float(value) if "." in value else int(value)
        if isinstance(number, int) and YEAR_RANGE[0] <= number <= YEAR_RANGE[1] and len(token) == 4:
            return converter(number, lang=lang, to="year")
        return converter(number, lang=lang)
    except (NotImplementedError, ValueError, OverflowError, TypeError, KeyError, AttributeError):
        return token


def symbol_words(symbol: str, lang: str) -> str:
    table = SYMBOL_WORDS.get(lang)
    if table and symbol in table:
        return table[symbol]
    return "x" * UNKNOWN_SYMBOL_CHARS


def acronym_words(token: str, lang: str) -> str:
    if lang == "en":
        return " ".join(LETTER_NAMES_EN.get(c.upper(), c) for c in token)
    return " ".join(c * LETTERS_PER_NAME for c in token)


def _is_acronym(token: str) -> bool:
    """Capitals-only ("GPL", "HTTP") or the "www" of an address: read letter by letter."""
    return token == "www" or (2 <= len(token) <= MAX_ACRONYM_LETTERS and token.isupper() and token.isascii())


def _glued(text: str, at: int) -> bool:
    """The character at ``at`` sits between two letters or digits ("apache.org"), not before a space."""
    return 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum()


@lru_cache(maxsize=1)
def _num2words():
    from num2words import num2words

    return num2words
