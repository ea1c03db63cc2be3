"""Drafting: facts and prompt templates, providers, validation, drafts, evaluation."""
