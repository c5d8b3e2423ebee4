"""The commands' work: each builds its rows from the floors below and writes its run directory and report."""
