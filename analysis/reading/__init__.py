"""Reading logs: the RunLog type, the CSV and TensorBoard readers, the run-directory format
and its durable writes."""
