"""Seeds as the unit: which runs count, the book's rule, compared setups, seed bands, the atlas, the one table writer."""
