"""The Slack bot: watch a run in Slack, host a live trading week people can join."""
