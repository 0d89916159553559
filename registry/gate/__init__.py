"""The promotion gate: the policy (what must hold), the evidence (both versions re-evaluated on the same
golden set), the decision (a pure function of the two), and the HTML report of it."""
