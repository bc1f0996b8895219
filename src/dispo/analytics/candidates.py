"""Candidate answers found in a transcript, for the model to rank.

A small model is a poor writer of values but a fair judge between them. Extraction therefore
lists what the call could be saying for a metric — spans for STRING, numbers for INTEGER, dates and
times for DATETIME — each with where it was said, and lets the model score them
(see :mod:`dispo.analytics.engine`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispo.analytics.normalize import NUMBER_WORDS, find_dates, find_times, parse_spoken_number

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "caller",
        "caller's",
        "agent",
        "user",
        "call",
        "request",
        "regarding",
        "according",
        "want",
        "wants",
        "wanted",
        "name",
        "type",
        "kind",
        "please",
        "okay",
        "ok",
        "yes",
        "thanks",
        "thank",
        "also",
        "like",
        "need",
        "get",
        "got",
        "one",
        "much",
        "many",
    ]
)
_GREETINGS = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "bye",
        "goodbye",
        "okay",
        "ok",
        "yes",
        "yeah",
        "no",
        "sure",
        "great",
        "perfect",
        "thanks",
        "thank",
        "please",
        "sorry",
        "well",
        "alright",
        "i",
        "i'm",
        "i'd",
        "i'll",
        "is",
        "it",
        "that",
        "this",
        "what",
        "how",
        "can",
        "could",
        "would",
        "will",
        "do",
        "does",
        "did",
        "the",
        "a",
        "an",
        "and",
    ]
)
_WORD = re.compile(r"[A-Za-z0-9][\w'&.-]*")


@dataclass(frozen=True)
class Mention:
    """A candidate value and where it was said (index of the turn, position in the transcript)."""

    surface: str
    value: Any
    turn: int
    order: int
    role: str
    # The words said right after the value ("3 tickets" → "tickets").
    after: str = ""
    # Whose value it is when the words around it say so: "user" or "agent" (the speaker's own
    # name in "I'm Alex", the addressee's in "Thanks, John"), else None; and whether the words
    # name that party ("I'm Alex") rather than something of theirs ("I'm from Acme").
    about: str | None = None
    naming: bool = False
    # Where the value starts in its turn's text (-1: not recorded).
    start: int = -1
    # A number that counts what the speaker found or offers ("I found 10 restaurants").
    listing: bool = False


def key_terms(question: str) -> list[str]:
    """The content words of a metric's question: what a call must mention to answer it."""
    words = re.findall(r"[a-z]+", question.lower())
    return [w for w in words if w not in STOPWORDS and len(w) > 2]


def stem(word: str) -> str:
    """Truncation stemming: the first five letters ("shared", "share" → "share"; "location" → "locat")."""
    return word.lower()[:5]


def matches(term: str, word: str) -> bool:
    """Whether ``word`` says ``term``: the same stem, or one the start of the other ("beds", "bedrooms")."""
    if stem(term) == stem(word):
        return True
    short, long = sorted((term.removesuffix("s"), word.removesuffix("s")), key=len)
    return len(short) >= 3 and long.startswith(short) and short not in STOPWORDS


# Currency said as a symbol or slang is the word a question uses ("$122", "bucks" → "dollars").
_CURRENCY = (("$", " dollars "), ("€", " euros "), ("£", " pounds "), ("bucks", "bucks dollars"))


def words_of(text: str) -> set[str]:
    """The lower-case words of ``text``, currency symbols spelled out."""
    text = text.lower()
    for symbol, spelled in _CURRENCY:
        text = text.replace(symbol, spelled)
    return set(re.findall(r"[a-z]+", text))


def term_hits(question: str, turns: Sequence[dict[str, str]]) -> list[int]:
    """For each turn, how many of the question's key terms it mentions."""
    terms = set(key_terms(question))
    out = []
    for t in turns:
        said = words_of(t["content"])
        out.append(sum(any(matches(term, w) for w in said) for term in terms))
    return out


def words(turns: Sequence[dict[str, str]], *, roles: tuple[str, ...] = ("user",)) -> list[Mention]:
    """Single content words said by ``roles``: candidates for values that are not names ("pop", "comedy")."""
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        if turn["role"] not in roles:
            continue
        for found in re.finditer(r"[A-Za-z][a-z'-]+", turn["content"]):
            w = found.group()
            if not _is_common(w, set()) and len(w) > 2:
                where = about(turns, i, found.start(), found.end())
                out.append(Mention(w, w, i, len(out), turn["role"], about=where))
    return out


_CALENDAR = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "today",
        "tomorrow",
        "tonight",
    ]
)


def _is_calendar(surface: str) -> bool:
    """ "March 1st", "Friday": a date, which DATETIME handles, not a name."""
    words = re.findall(r"[a-z]+|\d+", surface.lower())
    return (
        bool(words)
        and words[0] in _CALENDAR
        and all(w in _CALENDAR or w.isdigit() or w in {"st", "nd", "rd", "th", "the", "of"} for w in words)
    )


def spans(turns: Sequence[dict[str, str]], *, max_words: int = 6) -> list[Mention]:
    """Name-like spans: runs of capitalised words and numbered addresses.

    A lone capitalised word that opens a sentence ("Enjoy", "Make") is a name only if the call
    never uses it in lower case; calendar words are dates, not names.
    """
    lower_words = {w for t in turns for w in re.findall(r"\b[a-z][a-z'-]*", t["content"])}
    out: list[Mention] = []
    order = 0
    for i, turn in enumerate(turns):
        text = turn["content"]
        tokens = [(m.group(), m.start()) for m in _WORD.finditer(text)]
        j = 0
        while j < len(tokens):
            word, start = tokens[j]
            if _starts_name(word, start, text):
                k = j + 1
                while (
                    k < len(tokens)
                    and k - j < max_words
                    and _continues_name(tokens[k][0], tokens[k - 1][0])
                    and not _PAUSE.search(text[tokens[k - 1][1] + len(tokens[k - 1][0]) : tokens[k][1]])
                ):
                    k += 1
                while k > j + 1 and tokens[k - 1][0].lower() in {"of", "the", "and", "&", "at", "de", "in"}:
                    k -= 1
                opens_sentence = not text[:start].strip() or text[:start].rstrip()[-1] in ".!?"
                if (
                    opens_sentence
                    and k > j + 1
                    and _is_common(word, lower_words)
                    and word.lower() not in _ARTICLES
                ):
                    # "Something Asian Fusion", "Correct Alki Beach Park": a sentence's first word
                    # is capitalised for the sentence, not for the name after it.
                    j += 1
                    word, start = tokens[j]
                    opens_sentence = False
                surface = text[start : tokens[k - 1][1] + len(tokens[k - 1][0])].rstrip(".,'")
                common = k == j + 1 and _is_common(word, lower_words) and opens_sentence
                if surface.lower() not in _GREETINGS and not common and not _is_calendar(surface):
                    party, naming = whose(turns, i, start, start + len(surface))
                    out.append(
                        Mention(
                            surface, surface, i, order, turn["role"], about=party, naming=naming, start=start
                        )
                    )
                    order += 1
                j = k
            else:
                j += 1
    return out


# Between two capitalised words, a pause ends the name ("John! How", "Alex: we"); a comma does not
# ("Atlanta, GA", "London, UK").
_PAUSE = re.compile(r"[;:!?()\"]")


_ARTICLES = frozenset(["the", "a", "an"])
# Words a sentence opens with that are no names: "Correct.", "Terrific!", "That's it."
_INTERJECTIONS = frozenset(
    [
        "correct", "cool", "terrific", "awesome", "nice", "wonderful", "excellent", "fantastic", "lovely",
        "super", "fine", "right", "alright", "absolutely", "definitely", "exactly", "indeed", "wait", "hmm",
        "wow", "understood", "done", "good", "something", "anything", "nothing", "everything", "maybe",
        "perhaps", "actually", "sounds", "find", "search", "show", "tell", "give", "let", "that's", "it's",
        "there's", "what's", "here's", "you're", "how's", "where's", "who's", "any", "some", "also",
        "awesome", "fair", "true", "yup", "yep", "nope", "oh", "ah", "um", "uh", "certainly",
        "we're", "we've", "we'll", "we'd", "they're", "let's", "i've", "you've", "you'll", "isn't",
        "don't", "didn't", "doesn't", "can't", "won't", "that'll", "it'll",
    ]
)  # fmt: skip


def _is_common(word: str, lower_words: set[str]) -> bool:
    low = word.lower().rstrip(".'")
    return low in lower_words or low in STOPWORDS or low in _INTERJECTIONS or low in _GREETINGS


def _starts_name(word: str, start: int, text: str) -> bool:
    if word[0].isdigit():
        # "1275 Central Boulevard": a house number followed by a capitalised street name.
        rest = text[start + len(word) :].lstrip()
        return word.isdigit() and bool(rest) and rest[0].isupper()
    if not word[0].isupper():
        return False
    if word.lower() in _GREETINGS and not word.isupper():
        return False
    return word not in {"I", "I'm", "I'd", "I'll", "I've"}


def _continues_name(word: str, previous: str) -> bool:
    if word in {"I", "I'm", "I'd", "I'll", "I've"}:
        return False
    if previous.endswith((".", ",", "?", "!")) and not re.fullmatch(r"[A-Z][a-z]?\.", previous):
        return False
    return word[0].isupper() or word[0].isdigit() or word.lower() in {"of", "the", "and", "&", "de", "#"}


# -- whose value a mention is ----------------------------------------------------------------------

_GREETING_LEAD = r"(?:(?:hi|hello|hey|yes|yeah|oh|well|good\s+(?:morning|afternoon|evening)|ok|okay)\W+)*"
# Before a value, the speaker presenting themselves: "I'm Alex", "my name is", "this is Maya".
_SELF_BEFORE = re.compile(
    r"(?:\b(?:i'm|i\s+am|my\s+(?:(?:first|last|full)\s+)?name\s+is|my\s+name's|name's|call\s+me|"
    r"i\s+go\s+by|you(?:'re|\s+are)\s+(?:speaking|talking)\s+(?:with|to))\s*,?\s*)$",
    re.IGNORECASE,
)
# Before a value, something the speaker has, or where they are from: "my number is …", "calling from …".
_OWN_BEFORE = re.compile(
    r"(?:\b(?:my\s+(?:(?:phone|cell|mobile|email|e-mail|home|work|account|date\s+of)\s*)?"
    r"(?:number|phone|email|e-mail|address|extension|ext|age|title|position|company|employer|"
    r"birthday|birth|account|id|username)\s+(?:is|was|'s)|"
    r"(?:calling|ringing)\s+(?:from|on\s+behalf\s+of|for)|i(?:'m|\s+am)\s+(?:with|from)|"
    r"on\s+behalf\s+of|i\s+(?:work|am\s+working)\s+(?:for|at|with)|i\s+represent|here\s+at|"
    r"we(?:'re|\s+are)\s+(?:from|with)?)\s*,?\s*)$",
    re.IGNORECASE,
)
# At the start of a turn, the phone's way to say who is speaking: "Hi, this is Maya", "It's John".
_SELF_OPENING = re.compile(
    rf"^\W*{_GREETING_LEAD}(?:(?-i:[A-Z][a-z]+),\s+)?(?:this\s+is|it's|it\s+is)\s+$", re.IGNORECASE
)
_LEAD_ONLY = re.compile(rf"\W*{_GREETING_LEAD}\W*", re.IGNORECASE)
# After a value: "Alex here", "Alex speaking".
_SELF_AFTER = re.compile(r"^\s*,?\s*(?:here|speaking)\b", re.IGNORECASE)
# Before a value, the speaker addressing the other party by it: "Thanks, John", "Am I speaking with John?"
_ADDRESSEE_BEFORE = re.compile(
    r"(?:\b(?:hi|hello|hey|dear|thanks|thank\s+you(?:\s+so\s+much|\s+very\s+much)?|"
    r"good\s+(?:morning|afternoon|evening)|goodbye|bye|welcome|nice\s+to\s+(?:meet|talk\s+to)\s+you|"
    r"pleasure(?:\s+to\s+meet\s+you)?|am\s+i\s+(?:speaking|talking)\s+(?:with|to)|is\s+this|are\s+you|"
    r"your\s+(?:(?:first|last|full)\s+)?name\s+is|you(?:'re|\s+are))\s*,?\s*)$",
    re.IGNORECASE,
)
# A turn that asks the other party who they are: its reply's first sentence names the replier.
ASKS_WHO = re.compile(
    r"\b(?:your\s+(?:(?:first|last|full)\s+)?name|who\s+(?:am\s+i|i\s+am)\s+(?:speaking|talking)|"
    r"who(?:'s|\s+is)\s+(?:calling|this|speaking)|what\s+should\s+i\s+call\s+you|"
    r"who\s+do\s+i\s+have\s+on\s+the\s+line|introduce\s+yourself)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


# Curly quotes read as straight ones (U+2019 as an apostrophe); one character for one, so offsets hold.
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def plain(text: str) -> str:
    return text.translate(QUOTES)


def other(role: str) -> str:
    return "agent" if role == "user" else "user"


def about(turns: Sequence[dict[str, str]], index: int, start: int, end: int) -> str | None:
    """Whose value the words at ``turns[index]["content"][start:end]`` are, when the call says so:
    ``"user"``, ``"agent"`` or None (see :func:`whose`)."""
    return whose(turns, index, start, end)[0]


def whose(turns: Sequence[dict[str, str]], index: int, start: int, end: int) -> tuple[str | None, bool]:
    """Whose value the words at ``turns[index]["content"][start:end]`` are, and whether they name them.

    The speaker's own name ("I'm Alex", "this is Maya", "Marco speaking", the reply to "who am I
    speaking with?"), or something of theirs ("my number is …", "calling from Acme", the rest of a
    sentence that introduces the speaker); the other party's name ("Thanks, John", "Am I speaking
    with John?"). ``(None, False)`` when nothing marks it.
    """
    turn = turns[index]
    text, speaker = plain(turn["content"]), turn["role"]
    sentence_start = 0
    for m in _SENTENCE_END.finditer(text, 0, start):
        sentence_start = m.end()
    before = text[sentence_start:start]
    if _SELF_BEFORE.search(before) or _SELF_AFTER.match(text[end:]):
        return speaker, True
    if sentence_start == 0 and _SELF_OPENING.match(before):
        return speaker, True
    if _ADDRESSEE_BEFORE.search(before):
        return other(speaker), True
    previous = turns[index - 1] if index > 0 else None
    # The reply to "who am I speaking with?" opens with a name: "Linda Park."
    replies = sentence_start == 0 and previous is not None and previous["role"] != speaker
    if replies and previous and ASKS_WHO.search(plain(previous["content"])) and _LEAD_ONLY.fullmatch(before):
        return speaker, True
    if _OWN_BEFORE.search(before) or _INTRO_IN_SENTENCE.search(before):
        # "I'm Alex, a marketing specialist from Acme Corp.": the sentence is about the speaker.
        return speaker, False
    return None, False


_INTRO_IN_SENTENCE = re.compile(
    r"\b(?:[Ii]'m|I\s+am|[Mm]y\s+name\s+is|[Tt]his\s+is)\s+[A-Z][a-z]+\b.*(?:,|\bfrom\b|\bwith\b|\bat\b)",
)


def numbers(turns: Sequence[dict[str, str]]) -> list[Mention]:
    """Every number said (digits or words), as ints, excluding clock times."""
    out: list[Mention] = []
    order = 0
    pattern = re.compile(
        r"\$?\d[\d,]*(?:\.\d+)?|\b(?:(?:"
        + "|".join(sorted(NUMBER_WORDS | {"hundred", "thousand", "couple"}, key=len, reverse=True))
        + r")(?:[\s-]+|\b))+",
        re.IGNORECASE,
    )
    for i, turn in enumerate(turns):
        text = turn["content"]
        clock_spans = [
            m.span() for m in re.finditer(r"\d{1,2}:\d{2}|\d{1,2}\s*[ap]\.?m\b", text, re.IGNORECASE)
        ]
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in clock_spans):
                continue
            if re.match(r"(?:st|nd|rd|th)\b", text[m.end() :], re.IGNORECASE):
                continue  # an ordinal: a day of the month, not a count
            surface = m.group().strip(" -,")
            if not surface or surface.lower() in {"a", "an"}:
                continue
            value = parse_spoken_number(surface)
            if value is None:
                continue
            if re.match(r"\s+(?-i:[A-Z][a-z]+)", text[m.end() :]) and surface[0].isdigit():
                continue  # a house number: "613 Main Street"
            after = " ".join(re.findall(r"[a-z]+", text[m.end() :].lower())[:2])
            if surface.startswith("$") or after.startswith("bucks"):
                after = f"dollars {after}"
            where = about(turns, i, m.start(), m.end())
            listing = bool(
                (_LISTING_BEFORE.search(text[: m.start()]) or _LISTING_AFTER.match(text[m.end() :]))
                and not _PARTY_AFTER.match(text[m.end() :])
            )
            out.append(Mention(surface, value, i, order, turn["role"], after, where, listing=listing))
            order += 1
        for m in _ONE_PERSON.finditer(text):
            out.append(
                Mention(m.group(), 1, i, order, turn["role"], "people", about(turns, i, m.start(), m.end()))
            )
            order += 1
    return out


# A count of what was found or offered ("I found 10 restaurants", "1 of 10 results", "there are 8
# hotels"): the agent's tally, not what the caller asks for.
_LISTING_BEFORE = re.compile(
    r"(?:\b(?:found|find|there\s+(?:are|is)|i\s+(?:have|see|got)|we\s+have|(?:\d+|one)\s+of)\s+$)",
    re.IGNORECASE,
)
_LISTING_AFTER = re.compile(
    r"\s+(?:of\s+\d+|(?:\w+\s+)?(?:results?|options?|matches|choices|hits|of\s+them|available|that\s+match))\b",
    re.IGNORECASE,
)
_PARTY_AFTER = re.compile(
    r"\s+(?:of\s+us|people|persons|adults|kids|children|guests|passengers)\b", re.IGNORECASE
)
# The caller alone: "just me", "for myself", "by myself".
_ONE_PERSON = re.compile(
    r"\b(?:just|only)\s+(?:me|myself|one\s+person)\b|\b(?:for|by)\s+myself\b", re.IGNORECASE
)


def dates(turns: Sequence[dict[str, str]], reference: datetime) -> list[Mention]:
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        for surface, value in find_dates(turn["content"], reference):
            out.append(Mention(surface, value, i, len(out), turn["role"]))
    return out


def times(turns: Sequence[dict[str, str]]) -> list[Mention]:
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        for surface, value in find_times(turn["content"]):
            out.append(Mention(surface, value, i, len(out), turn["role"]))
    return out


_FIGURE = re.compile(
    r"(?:[$€£]\s?)?\+?\d(?:[\d,.:/()-]|\s(?=\d))*"
    r"(?:\s?(?:%|percent|degrees|mph|miles\s+per\s+hour|dollars|euros|pounds|minutes|mins|hours|stars?)\b)?"
)


def figures(turns: Sequence[dict[str, str]]) -> list[Mention]:
    """Every figure said with its digits and unit as said ("$50", "+1 206-583-6453", "29 percent"):
    candidates for prices, phone numbers, speeds."""
    out: list[Mention] = []
    for i, turn in enumerate(turns):
        for m in _FIGURE.finditer(turn["content"]):
            surface = m.group().strip(" ,.-/(")
            if any(ch.isdigit() for ch in surface):
                party, _ = whose(turns, i, m.start(), m.end())
                out.append(Mention(surface, surface, i, len(out), turn["role"], about=party, start=m.start()))
    return out


def modifiers(turns: Sequence[dict[str, str]], nouns: Sequence[str]) -> list[Mention]:
    """The word said right before one of ``nouns``: "rock music", "Asian food", "funny movies" —
    candidates for what kind of thing the caller wants."""
    out: list[Mention] = []
    if not nouns:
        return out
    for i, turn in enumerate(turns):
        text = turn["content"]
        for m in re.finditer(r"\b([A-Za-z][A-Za-z'-]+)\s+([A-Za-z]+)\b", text):
            word, noun = m.group(1), m.group(2).lower()
            if (
                not any(matches(n, noun) for n in nouns)
                or _is_common(word, set())
                or word.lower() in NUMBER_WORDS
            ):
                continue
            if any(matches(n, word.lower()) for n in nouns):
                continue
            party, _ = whose(turns, i, m.start(), m.end(1))
            out.append(Mention(word, word, i, len(out), turn["role"], about=party, start=m.start()))
    return out


# -- negation and polarity -------------------------------------------------------------------------

NEGATORS = frozenset(
    ["not", "no", "never", "neither", "nor", "without", "hardly", "barely", "none", "nobody", "nothing"]
)
# Phrases whose negative word does not negate ("no problem" agrees) or whose words are a refusal.
_PHRASES = (
    (r"\bno\s+(?:problem|problems|worries|worry|doubt|question|objection|objections)\b", " positive "),
    (r"\bnot\s+(?:a\s+problem|a\s+bad\s+idea|bad|a\s+worry)\b", " positive "),
    (r"\bwhy\s+not\b|\bof\s+course\b|\bcan'?t\s+wait\b|\bby\s+all\s+means\b", " positive "),
    (r"\bthat(?:'s|\s+is)\s+(?:right|correct|fine|perfect|great)\b|\bsounds\s+good\b|\bgo\s+ahead\b", " positive "),
    (r"\bno\s+(?:thanks|thank\s+you)\b|\bnot\s+(?:really|now|today|right\s+now|at\s+the\s+moment|anymore)\b", " negative "),
    (r"\b(?:i(?:'ll|\s+will)\s+pass|rather\s+not|no\s+longer|not\s+at\s+all)\b", " negative "),
    (r"\b(?:not\s+sure|unsure|maybe|perhaps|i\s+don'?t\s+know|let\s+me\s+think|no\s+idea|"
     r"might|possibly|undecided|think\s+about\s+it)\b", " unsure "),
)  # fmt: skip
_CONTRACTED_NOT = re.compile(r"\b(\w+)n't\b", re.IGNORECASE)
POSITIVE = frozenset(
    [
        "yes", "yeah", "yep", "yup", "sure", "please", "ok", "okay", "correct", "right", "great",
        "perfect", "confirmed", "booked", "reserved", "successfully", "success", "done", "sounds",
        "works", "fine", "absolutely", "definitely", "positive", "interested", "agree", "agreed",
        "love", "like", "want", "good", "excellent", "wonderful", "certainly", "indeed",
        # What an agent says of a request it carried out: "Your visit is scheduled."
        "successful", "scheduled", "completed", "purchased", "processed", "placed", "sent", "paid",
        "bought", "arranged", "enjoy",
    ]
)  # fmt: skip
NEGATIVE = frozenset(
    ["nope", "nah", "unable", "sorry", "failed", "fail", "unfortunately", "negative", "decline", "cancel"]
)


def _tokens(text: str) -> list[str]:
    text = plain(text)
    text = _CONTRACTED_NOT.sub(
        r"\1 not", text.lower().replace("won't", "will not").replace("can't", "can not")
    )
    for pattern, word in _PHRASES:
        text = re.sub(pattern, word, text)
    return re.findall(r"[a-z]+", text)


def negated_at(text: str, start: int, window: int = 3) -> bool:
    """Whether the words at ``text[start:]`` are negated by one of the few words before them.

    "not interested", "don't want", "never booked" are; "no problem, I'm interested" is not.
    """
    before = _tokens(text[:start])
    scope: list[str] = []
    for word in reversed(before):
        if word in {"but", "and", "positive", "unsure"} or len(scope) >= window:
            break
        scope.append(word)
    return any(w in NEGATORS or w == "negative" for w in scope)


def polarity(text: str) -> int:
    """How much ``text`` says yes (> 0) or no (< 0): "no problem" is a yes, "not interested" a no.

    A negator turns the sentiment word right after it ("not good", "don't want") and otherwise
    counts as a no itself; "not sure", "maybe" count neither way.
    """
    words = _tokens(text)
    score = 0
    i = 0
    while i < len(words):
        w = words[i]
        if w == "positive":
            score += 1
        elif w == "negative":
            score -= 1
        elif w in NEGATORS:
            turned = next((j for j in range(i + 1, min(i + 4, len(words))) if words[j] in POSITIVE), None)
            score -= 1
            if turned is not None:
                i = turned
        elif w in POSITIVE:
            score += 1
        elif w in NEGATIVE:
            score -= 1
        i += 1
    return score


def unsure(text: str) -> bool:
    """Whether ``text`` hedges: "not sure", "maybe", "I don't know"."""
    return "unsure" in _tokens(text)


def distinct(mentions: Sequence[Mention], key: Any = None) -> list[Mention]:
    """One mention per value (compared case-insensitively), keeping the last time it was said."""
    last: dict[Any, Mention] = {}
    for m in mentions:
        k = key(m) if key else (m.value.lower() if isinstance(m.value, str) else m.value)
        last.pop(k, None)
        last[k] = m
    return list(last.values())


__all__ = [
    "ASKS_WHO",
    "Mention",
    "about",
    "dates",
    "distinct",
    "figures",
    "key_terms",
    "matches",
    "modifiers",
    "negated_at",
    "numbers",
    "other",
    "plain",
    "polarity",
    "spans",
    "stem",
    "term_hits",
    "times",
    "unsure",
    "whose",
    "words",
    "words_of",
]
