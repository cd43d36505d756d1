"""Runnable examples of model code of one's own (`[model] builder`), and the scripts that write their data."""
