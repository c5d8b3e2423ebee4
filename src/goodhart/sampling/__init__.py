"""Sampling from the policy: rollouts, pool engines (hf generate, vLLM) and content-cached Best-of-n pools."""
