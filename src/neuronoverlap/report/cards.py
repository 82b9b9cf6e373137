"""Neuron cards in the report (issue 29): for the top neurons of each stored O(s,t) and of the
chosen bridge's B(b; s,t), a card per neuron: activation probability per language (a bar
chart in CSS), top contexts per language with the firing token marked, the cross-lingual
agreement, the sets that hold it. Plain HTML and CSS, no script; any script and direction
(`dir="auto"` per context: Arabic and Hebrew right to left).

`cards_data(store, selections)` -> JSON-ready dict for `report.json`; `render_cards(data)` -> the section.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

#: Neurons shown per set, and contexts shown per language before the fold.
PER_SET = 4
SHOWN = 2

CSS = """
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 14px; }
.card { border: 1px solid #d8dee6; border-radius: 6px; padding: 10px 12px; min-width: 0;
        overflow-wrap: anywhere; background: #fff; }
.card h3 { margin: 0 0 4px; font-size: 1em; }
.card .sets { color: #555; font-size: 0.85em; }
.bars { display: grid; grid-template-columns: 2.4em 1fr 3.6em; gap: 1px 6px; font-size: 0.8em;
        margin: 6px 0; align-items: center; }
.bar { background: #4c78a8; height: 0.75em; min-width: 1px; }
.ctx { font-size: 0.86em; margin: 2px 0; unicode-bidi: plaintext; }
.ctx .lang { display: inline-block; min-width: 2.2em; color: #555; font-family: monospace; }
.ctx .val { color: #555; font-variant-numeric: tabular-nums; margin-right: 4px; }
.ctx mark { background: #ffd166; padding: 0 1px; border-radius: 2px; }
"""


def cards_data(
    store, selections: Iterable[Any] | None = None, per_set: int = PER_SET
) -> dict[str, Any] | None:
    """The cards of the top `per_set` members of each overlap set and of each chosen bridge's
    set (JSON-ready), or None when the store holds no contexts or no such sets.

    `store`: an open `Store` (the report's, read in its session); `selections`: the bridge
    selections whose chosen bridge's set is shown (None: the store's, read typed)."""
    from neuronoverlap.neurons.cards import build_cards, top_members
    from neuronoverlap.neurons.contexts import context_sources
    from neuronoverlap.store import schema

    with store:
        if not [s for s in context_sources(store) if s in store.corpora()]:
            return None
        if selections is None:
            selections = store.results("bridge-selection").values()
        names = [n for n in store.neuron_set_names() if n.startswith("overlap-")]
        for selection in selections:
            name = schema.bridge_set_name(selection.chosen, selection.src, selection.tgt)
            if name in store.neuron_set_names():
                names.append(name)
        neurons: list[tuple[int, int]] = []
        for name in names:
            neurons += [n for n in top_members(store, name, per_set) if n not in neurons]
        if not neurons:
            return None
        cards = build_cards(store, neurons, name="report")
    return {"sets": names, **cards.to_dict()}


def _bars(card: dict) -> str:
    rows = []
    for lang, p in sorted(card["activation_probability"].items()):
        rows.append(
            f'<span>{html.escape(lang)}</span><div><div class="bar" style="width:{100 * p:.1f}%"></div></div>'
            f"<span>{p:.3f}</span>"
        )
    return f'<div class="bars" title="activation probability per language">{"".join(rows)}</div>'


def _context(record: dict) -> str:
    tokens = [html.escape(t) for t in record["tokens"]]
    i = record["maxValueTokenIndex"]
    tokens[i] = f"<mark>{tokens[i]}</mark>"
    return (
        f'<div class="ctx" dir="auto"><span class="lang">{html.escape(record["lang"])}</span>'
        f'<span class="val">{record["maxValue"]:.2f}</span><bdi>{"".join(tokens)}</bdi></div>'
    )


def render_card(card: dict) -> str:
    agreement = card.get("agreement")
    agreement_text = (
        f"agreement {agreement:.2f} (chance {card['agreement_chance']:.2f})" if agreement is not None else ""
    )
    by_lang: dict[str, list[dict]] = {}
    for record in card["activations"]:
        by_lang.setdefault(record["lang"], []).append(record)
    shown = "".join(_context(r) for records in by_lang.values() for r in records[:SHOWN])
    rest = [r for records in by_lang.values() for r in records[SHOWN:]]
    folded = (
        f"<details><summary>{len(rest)} more contexts</summary>{''.join(_context(r) for r in rest)}</details>"
        if rest
        else ""
    )
    sets = ", ".join(card["sets"]) or "none"
    return (
        f'<div class="card" id="neuron-{card["layer"]}-{card["index"]}"><h3>neuron {card["layer"]}:'
        f'{card["index"]} <span class="note">{html.escape(card["hook"])}</span></h3>'
        f'<div class="sets">{html.escape(agreement_text)} · sets: {html.escape(sets)}</div>'
        f"{_bars(card)}{shown}{folded}</div>"
    )


def render_cards(data: dict[str, Any] | None) -> str:
    """The section's content: a note, then the cards (or why there are none)."""
    if not data:
        return (
            '<p class="note">No neuron cards: the store holds no top-activating contexts or no overlap '
            "or bridge sets (record corpora with <code>neuronoverlap corpus</code>, schema 3).</p>"
        )
    note = (
        f'<p class="note">The {PER_SET} most active members (mean activation probability over the corpora) '
        f"of {', '.join(html.escape(s) for s in data['sets'])}. Bars: activation probability per "
        "language. Contexts: the FLORES sentences where the neuron fires most, the firing token "
        "marked, with its activation; agreement: mean Jaccard of the top sentences across "
        "languages, against chance (docs/neurons.md).</p>"
    )
    cards = "".join(render_card(c) for c in data["neurons"])
    return f'<style>{CSS}</style>{note}<div class="cards">{cards}</div>'
