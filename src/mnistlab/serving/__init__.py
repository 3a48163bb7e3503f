"""The draw page's server without HTTP: what each model process computes, its batching queues, the worker processes."""
