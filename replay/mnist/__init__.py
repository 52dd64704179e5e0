"""``replay record``'s MNIST recipe: the data, one training with every epoch committed,
several seeds."""
