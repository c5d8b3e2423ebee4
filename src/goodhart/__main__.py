"""`python -m goodhart …` (what torchrun runs: `torchrun --nproc_per_node 2 -m goodhart run`)."""

from goodhart.cli import main

main()
