"""The ``outreach`` command line (``outreach.cli.main:app``)."""
