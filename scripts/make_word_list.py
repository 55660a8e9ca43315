"""Regenerate nnlite/data/words/english.txt, the word list nnlite ships for
its printed-text training data (nnlite.data.printed).

The list is the N most frequent English words of wordfreq 3.1.1 (Robyn
Speer; "best" list, which merges Wikipedia, subtitles, news, books, web
text and social media), keeping only words of ASCII letters of 1-16
characters (the CRNN alphabet has no apostrophe or accent, and 16 is the
longest label the seed's 31 CTC steps always fit), lower-cased, in
frequency order. wordfreq is needed only here, never at run time:

    python -m venv /tmp/wf && /tmp/wf/bin/pip install wordfreq==3.1.1
    /tmp/wf/bin/python scripts/make_word_list.py [N]       # default 10000

wordfreq's data is licensed CC BY-SA 4.0; nnlite/data/words/NOTICE says so.
"""
import os
import re
import sys

import wordfreq

WORD = re.compile(r"[a-z]{1,16}")
OUT = os.path.join(os.path.dirname(__file__), "..", "nnlite", "data", "words", "english.txt")


def main(count=10000):
    words, seen = [], set()
    for word in wordfreq.top_n_list("en", count * 3, wordlist="best"):
        word = word.lower()
        if WORD.fullmatch(word) and word not in seen:
            seen.add(word)
            words.append(word)
        if len(words) == count:
            break
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(words) + "\n")
    print(f"wrote {len(words)} words to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
