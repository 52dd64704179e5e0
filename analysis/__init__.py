"""Reading training logs and drawing charts. Never imports TensorFlow or `replay`."""
