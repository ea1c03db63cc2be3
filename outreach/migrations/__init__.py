"""Alembic migrations for the review-queue database, shipped inside the package and run by ``outreach db upgrade``."""
