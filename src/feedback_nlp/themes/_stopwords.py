"""Function words of the languages feedback most often arrives in besides English, for theme keywords.

scikit-learn ships English stop words only, so a theme of German or French reviews was named "die, und, ich"
or "le, est, pas". Each item's language is guessed from these same lists (the language whose function words
it uses most, only when that beats English) and that language's words are left out of its keywords; English
items are never touched by another language's list (French "car", German "war" stay keywords there).

>>> sorted(item_stop_words("Die App stürzt beim Start ab und ich kann mich nicht anmelden"))[:3]
['ab', 'aber', 'alle']
>>> item_stop_words("The app crashes on start and I cannot log in")
frozenset()
"""

from __future__ import annotations

import re

__all__ = ["STOP_WORDS", "item_stop_words"]

_WORD = re.compile(r"[^\W\d_]+")

STOP_WORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in {
    "de": """ab aber alle allem allen aller alles als also am an ander andere anderen auch auf aus bei beim bin bis
        bist da damit dann das dass dein deine dem den denn der des dich die dies diese diesem diesen dieser dieses
        dir doch dort du durch ein eine einem einen einer eines einfach er es etwas euch euer für gegen gibt habe
        haben hat hatte hier hin ich ihr ihre im immer in ist ja jede jedem jeden jeder jetzt kann kein keine
        können man manchmal mehr mein meine mich mir mit muss nach nicht nichts noch nun nur ob oder ohne schon
        sehr sein seine sich sie sind so soll sollte über um und uns unser unter viel vom von vor war waren was
        weil wenn wer werden wie wieder wir wird wo wurde zu zum zur""",
    "fr": """à ai aie alors au aucun aussi autre aux avec avoir avons bien car ce cela ces cet cette chaque comme dans
        de des donc du elle elles en encore est et été être eu fait faire il ils je jamais juste la le les leur
        lui ma mais me même mes moi mon n ne ni nos notre nous on ont ou où par pas peu peut plus pour pourquoi
        qu quand que quel quelle qui sa sans se ses si son sont sous sur ta te tes toi ton tous tout toujours
        très tu un une vos votre vous y ça c d j l m s t""",
    "es": """a al algo algunos ante antes aquí así aun aunque bien cada como con contra cual cuando de del desde
        donde dos el él ella ellos en entre era es esa ese eso esta está están estar este esto estoy fue ha
        hace hacer han hasta hay la las le les lo los más me mi mis mucho muy nada ni no nos nosotros nuestra
        nuestro o otra otro para pero poco por porque puede que quien se sea ser si sí siempre sin sobre solo
        son su sus también tan te tengo tiene todo todos tu tus un una uno unos usted y ya yo""",
    "pt": """a ao aos aqui as até bem cada com como da das de dela dele do dos e é ela ele eles em entre era essa
        esse esta está estão este eu foi há isso isto já la lhe mais mas me mesmo meu minha muito na não nas
        nem no nos nós num numa o os ou para pela pelo pode por porque quando que quem se sem ser seu seus só
        sua suas também tem ter toda todo todos tu um uma você vocês""",
    "it": """a ad al alla alle anche ancora avere c che chi ci come con cosa da dal dalla dei del della delle di
        dove e è ed era essere fa fare gli ha hanno ho i il in io la le lo loro ma mai mi mia mio molto ne nei
        nel nella nelle no noi non o ogni per perché più può quando quello questa questo se sei senza si sia
        sono su sua sul sulla suo tra tu tutti tutto un una uno vi voi""",
    "nl": """aan al alle als altijd ben bij daar dan dat de deze die dit doen door dus een eens en er ga gaat
        geen had heb hebben heeft hem het hier hij hoe hun ik in is ja je jij kan kon kunnen maar me meer men
        met mij mijn moet na naar niet niets nog nu of om omdat ons onze ook op over te tot u uit van veel voor
        want was wat we wel werd wij wil worden wordt zal ze zei zelf zich zij zijn zo zonder zou""",
}.items()}


def _english() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


_ENGLISH = _english()
_LANGUAGES_OF: dict[str, list[str]] = {}  # word -> the languages listing it (one pass over an item's words)
for _lang, _words in STOP_WORDS.items():
    for _w in _words:
        _LANGUAGES_OF.setdefault(_w, []).append(_lang)


def item_stop_words(text: str) -> frozenset[str]:
    """The function words of ``text``'s language when it is one of :data:`STOP_WORDS` (at least two of
    them, and more than its English function words); otherwise none."""
    english, hits = 0, dict.fromkeys(STOP_WORDS, 0)
    for w in _WORD.findall(text.lower()):
        english += w in _ENGLISH
        for lang in _LANGUAGES_OF.get(w, ()):
            hits[lang] += 1
    best = max(hits, key=hits.__getitem__)  # ties: the first listed
    return STOP_WORDS[best] if hits[best] >= 2 and hits[best] > english else frozenset()
