"""Pure decision logic: what a check result means and what to do about it."""
