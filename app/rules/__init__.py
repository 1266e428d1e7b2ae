"""Rules and policy as data: the rules file model, its loader/validator and `check-rules`."""
