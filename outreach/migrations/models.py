"""Every table module of the schema, imported explicitly so ``Base.metadata`` describes the whole database.

Alembic's environment and the models-vs-migrations test read :data:`metadata`; a new table module is added
to this list and nowhere else.
"""

from __future__ import annotations

from outreach.engine import store_tables as event_store_tables
from outreach.integrations import tables as integration_tables
from outreach.metrics import tables as metrics_tables
from outreach.review import storage as review_tables
from outreach.schema import Base
from outreach.sending import tables as sending_tables

TABLE_MODULES = (review_tables, sending_tables, metrics_tables, event_store_tables, integration_tables)
metadata = Base.metadata
