"""Score: fired signals to a 0-100 score per subject, with every contributing reason kept."""
