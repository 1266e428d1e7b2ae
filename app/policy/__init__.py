"""Policy: assessments to alerts (evidence) and decisions (what the rate limiter enforces)."""
