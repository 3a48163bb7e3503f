"""Planning and running trainings: the sweep driver, the child runner, the chapter's reproductions."""
