"""Sending: sequences, the scheduler, transports, replies, suppression."""
