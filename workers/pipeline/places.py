"""Names of states and of places in the news newsmon follows, each with the name it stands for.

Dedupe reads them as headline facts: "Lithuania grants..." and "Latvia grants..." are
different events even though a headline's first word is capitalised anyway, and
"Slovakia's government" and "Slovak government" name the same state.
"""

from __future__ import annotations

# One line per place: its name first, then the other words that name it (people, capital).
_PLACES = """
ukraine ukrainian kyiv
russia russian moscow kremlin
poland polish warsaw
hungary hungarian budapest
slovakia slovak bratislava
romania romanian bucharest
moldova moldovan chisinau
belarus belarusian minsk
lithuania lithuanian vilnius
latvia latvian riga
estonia estonian tallinn
finland finnish helsinki
sweden swedish stockholm
norway norwegian oslo
denmark danish copenhagen
germany german berlin
france french paris
britain british uk london
ireland irish dublin
italy italian rome
spain spanish madrid
portugal portuguese lisbon
netherlands dutch amsterdam
belgium belgian brussels
austria austrian vienna
switzerland swiss bern geneva
czechia czech prague
bulgaria bulgarian sofia
greece greek athens
serbia serbian belgrade
croatia croatian zagreb
turkey turkish ankara istanbul
georgia georgian tbilisi
armenia armenian yerevan
azerbaijan azerbaijani baku
kazakhstan kazakh astana
china chinese beijing
japan japanese tokyo
india indian delhi
korea korean seoul pyongyang
iran iranian tehran
israel israeli jerusalem
syria syrian damascus
qatar qatari doha
egypt egyptian cairo
brazil brazilian
canada canadian ottawa
australia australian
america american washington usa
crimea crimean sevastopol
kharkiv
odesa
dnipro
lviv
zaporizhzhia
kherson
mykolaiv
sumy
chernihiv
poltava
vinnytsia
zhytomyr
rivne
lutsk
ternopil
uzhhorod
chernivtsi
khmelnytskyi
cherkasy
kropyvnytskyi
donetsk
luhansk
kramatorsk
sloviansk
pokrovsk
bakhmut
kupiansk
izium
nikopol
mariupol
melitopol
bucha
irpin
belgorod
kursk
bryansk
"""

PLACE_OF: dict[str, str] = {
    word: line.split()[0] for line in _PLACES.strip().splitlines() for word in line.split()
}
