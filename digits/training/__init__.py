"""Training: the loop, evaluation, the settings search and fine-tuning."""
