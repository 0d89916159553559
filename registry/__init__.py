"""MLflow Model Registry access, the model contract, and (next) the promotion gate and ledger."""
