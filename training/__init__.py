"""Fine-tune jobs: data loading and validation, losses, the trainer, MLflow logging."""
