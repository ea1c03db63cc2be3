"""Real systems around the pipeline: the event intake's keys and reactions, Zendesk, CRM, Slack, outbound
webhooks and ESP webhooks in. docs/integrations.md describes each one's setup, what it sends and how it fails."""
