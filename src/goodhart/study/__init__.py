"""Studies: end-to-end gold-vs-proxy experiments that call bon/, reward/ and policy/."""
