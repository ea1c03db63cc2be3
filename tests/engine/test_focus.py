"""The reactor's narrowed data set decides its accounts exactly as the whole data set does."""

from __future__ import annotations

import random

from outreach import bundled
from outreach.engine.data import load_dataset
from outreach.engine.decisions import decide, rules_for
from outreach.engine.focus import focused
from tests.datadir import AS_OF


def test_focused_decisions_equal_the_whole_data_set_s() -> None:
    dataset = load_dataset(bundled.DEMO_DATA)
    rules = rules_for(dataset)
    whole = {d.account_id: d for d in decide(dataset, rules, AS_OF)}
    ids = sorted(whole)
    picker = random.Random(18)
    shuffled = picker.sample(ids, len(ids))
    # every account once in a group of eight, and a few alone (the reactor's usual case)
    subsets = [set(shuffled[i : i + 8]) for i in range(0, len(ids), 8)] + [{a} for a in picker.sample(ids, 6)]
    for subset in subsets:
        narrow = focused(dataset, subset, rules.events.integration_requested)
        assert narrow.event_count < dataset.event_count
        for decision in decide(narrow, rules, AS_OF, account_ids=subset):
            assert decision == whole[decision.account_id], decision.account_id
