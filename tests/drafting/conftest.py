"""Fixtures shared by the drafting tests: one decided workspace over the small test data set (module scope),
and the facts of its upsell (a1) and bundle (a3) accounts. A test module that needs other data defines its own
``workspace``."""

from __future__ import annotations

import pytest

from outreach.drafting.drafts import Workspace, open_workspace
from outreach.drafting.facts import DraftFacts
from tests.helpers import AS_OF, make_data_dir


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return open_workspace(make_data_dir(tmp_path_factory.mktemp("drafting") / "data"), AS_OF)


@pytest.fixture(scope="module")
def upsell(workspace: Workspace) -> DraftFacts:
    return workspace.context.facts(workspace.decision("a1"))


@pytest.fixture(scope="module")
def bundle(workspace: Workspace) -> DraftFacts:
    return workspace.context.facts(workspace.decision("a3"))
