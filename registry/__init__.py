"""The registry: MLflow Model Registry access, the model contract, the verified loader, the promotion gate,
the ledger and its compare-and-set alias moves, and the release-manager jobs (register, promote, rollback,
serve, doctor)."""
