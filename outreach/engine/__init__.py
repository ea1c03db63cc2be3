"""The decision engine: data in, triggers, friction, health, offers, one decision per account."""
