"""The review queue: stored drafts, users and the queue reps work through."""
