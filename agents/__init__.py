"""Agents: the policies that trade on behalf of participants."""
