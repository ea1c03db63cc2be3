"""Files shipped inside the package: default rules, drafting policy, prompts, sequences, demo data, eval set.

Every path the library reads by default is named here once, relative to the installed package, so a wheel
installed anywhere finds them (``pip install outreach`` carries ``outreach/defaults/``).
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS = Path(__file__).resolve().parent / "defaults"
RULES = DEFAULTS / "rules.yaml"
DRAFTING = DEFAULTS / "drafting.yaml"
PROMPTS = DEFAULTS / "prompts"
SEQUENCES = DEFAULTS / "sequences"
DEMO_DATA = DEFAULTS / "demo"
EVAL_SET = DEFAULTS / "eval"
